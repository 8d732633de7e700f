# Frame extraction: probe and validate the video, record the probe as JSON, copy out its audio.
# Frames themselves are not written to disk: later stages stream them from the video by index.


rule extract:
    input:
        video=target_of,
    output:
        probe=target_files("{target}").probe,
    log:
        LOGS / "extract" / "{target}.log",
    benchmark:
        BENCH / "extract" / "{target}.tsv"
    threads: res("extract", "threads")
    resources:
        mem_mb=res("extract", "mem_mb"),
        runtime=res("extract", "runtime"),
    params:
        audio=audio_path,
    shell:
        "nice-core probe {input.video:q} -o {output.probe:q} --audio {params.audio:q} > {log:q} 2>&1"
