# The 3D prior: per frame the face's UV unwrap, lighting, albedo, detail, shape and identity embedding, for
# the target, the proxy (on the target's geometry) and the identity input; the carrier's 3D losses read it.


rule prior3d:
    input:
        store=store_of,
        proxy=proxy_path,
        check=work("{video}").proxy_check,
        identity=identity_path,
        models=prior3d_models,
    output:
        prior3d=work("{video}").prior3d,
    log:
        LOGS / "prior3d" / "{video}.log",
    benchmark:
        BENCH / "prior3d" / "{video}.tsv"
    threads: res("prior3d", "threads")
    resources:
        mem_mb=res("prior3d", "mem_mb"),
        runtime=res("prior3d", "runtime"),
    params:
        flags=flags("prior3d"),
    shell:
        "nice-core prior3d --store {input.store:q} --proxy {input.proxy:q} --check {input.check:q}"
        " --identity {input.identity:q} -o {output.prior3d:q} --threads {threads}"
        " {params.flags} > {log:q} 2>&1"
