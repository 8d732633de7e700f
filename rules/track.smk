# Face crop and alignment: track one subject, smooth the alignment, store crops/masks/landmarks in HDF5.


rule track:
    input:
        video=target_of,
        probe=target_files("{target}").probe,
    output:
        **track_outputs(),
    log:
        LOGS / "track" / "{target}.log",
    benchmark:
        BENCH / "track" / "{target}.tsv"
    threads: res("track", "threads")
    resources:
        mem_mb=res("track", "mem_mb"),
        runtime=res("track", "runtime"),
    params:
        out_dir=target_dir,
        flags=flags("face", "encode"),
    shell:
        "nice-core track {input.video:q} -o {params.out_dir:q} --probe {input.probe:q} {params.flags}" " > {log:q} 2>&1"
