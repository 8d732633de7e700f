# Face crop and alignment: track one subject, smooth the alignment, store crops/masks/landmarks in HDF5.


rule track:
    input:
        video=video_path,
        probe=work("{video}").probe,
    output:
        **track_outputs(),
    log:
        LOGS / "track" / "{video}.log",
    benchmark:
        BENCH / "track" / "{video}.tsv"
    threads: res("track", "threads")
    resources:
        mem_mb=res("track", "mem_mb"),
        runtime=res("track", "runtime"),
    params:
        out_dir=work_dir,
        flags=flags("face", "encode"),
    shell:
        "nice-core track {input.video:q} -o {params.out_dir:q} --probe {input.probe:q} {params.flags}" " > {log:q} 2>&1"
