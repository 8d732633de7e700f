# Re-compositing: the fitted carrier runs on every target crop, pasted back through the target's mask.
# The refined video goes into the results layout (FF++: refined_sequences/<Method>-NICe/<c>/videos/...),
# keyed by its path there; OUTPUT_VIDEO maps it back to the video's name. With composite.save_uncertainty
# the carrier's sigma maps go to <results>/uncertainty/<same path> (outside the layout detectors read).


def composite_input(wildcards):
    name = OUTPUT_VIDEO[wildcards.outpath]
    return {"target": str(VIDEOS[name].target), "store": WORK / name / "face.h5",
            "carrier": WORK / name / "carrier.safetensors", "proxy": proxy_of(name)}


def composite_extra(wildcards):
    name = OUTPUT_VIDEO[wildcards.outpath]
    flags = ["--paste", COMPOSITE.get("paste", "residual")]
    flags.append("--swap-region" if COMPOSITE.get("swap_region", True) else "--no-swap-region")
    if VIDEOS[name].identity is not None:
        flags += ["--identity", str(VIDEOS[name].identity)]
    return " ".join(map(shlex.quote, flags))


rule composite:
    input:
        unpack(composite_input),
    output:
        video=RESULTS / "{outpath}",
        **({"sigma": RESULTS / "uncertainty" / "{outpath}"} if COMPOSITE.get("save_uncertainty", False) else {}),
    params:
        extra=composite_extra,
        sigma=lambda wc, output: f"--save-uncertainty {shlex.quote(output.sigma)}" if "sigma" in output.keys() else "",
        flags=ENCODE_FLAGS,
    log:
        LOGS / "composite" / "{outpath}.log",
    benchmark:
        BENCH / "composite" / "{outpath}.tsv"
    threads: res("composite", "threads", 2)
    resources:
        mem_mb=res("composite", "mem_mb", 3000),
        runtime=res("composite", "runtime", 60),
    shell:
        "nice-core composite --target {input.target:q} --store {input.store:q} --carrier {input.carrier:q}"
        " --proxy {input.proxy:q} -o {output.video:q} {params.extra} {params.sigma}"
        " {params.flags} > {log:q} 2>&1"
