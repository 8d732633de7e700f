# Carrier fitting: one UNet per video, fitted to map the target's crops to the proxy's (NICe Sec. 3.2.1).
# Checkpoints go to <work>/<video>/checkpoint/ after every epoch; they are not a declared output, so a job
# killed by a time limit or preemption resumes from its last epoch when the workflow is rerun.
# The device is `carrier.device` (auto: CUDA when the node has a GPU, else the CPU); cluster profiles ask for
# a GPU through this rule's resources (resources.carrier in the config, or the profile's set-resources).
# With carrier.warm_start, the fit of a target's second and later videos starts from its first video's carrier.


rule carrier:
    input:
        store=store_of,
        proxy=proxy_path,
        check=work("{video}").proxy_check,
        prior3d=work("{video}").prior3d,
        init=warm_start,
    output:
        proxy_crops=work("{video}").proxy_crops,
        carrier=work("{video}").carrier,
    log:
        LOGS / "carrier" / "{video}.log",
    benchmark:
        BENCH / "carrier" / "{video}.tsv"
    threads: res("carrier", "threads")
    resources:
        mem_mb=res("carrier", "mem_mb"),
        runtime=res("carrier", "runtime"),
        gpu=res("carrier", "gpu"),
        slurm_extra=res("carrier", "slurm_extra"),
    params:
        checkpoints=checkpoint_dir,
        flags=flags("carrier"),
        warm=warm_flags,
    shell:
        "nice-core fit --store {input.store:q} --proxy {input.proxy:q} --check {input.check:q}"
        " --prior3d {input.prior3d:q} --proxy-crops {output.proxy_crops:q} -o {output.carrier:q}"
        " --checkpoint-dir {params.checkpoints:q} --threads {threads}"
        " {params.flags} {params.warm} > {log:q} 2>&1"
