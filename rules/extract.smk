# Frame extraction: probe and validate the video, record the probe as JSON, copy out its audio.
# Frames themselves are not written to disk: later stages stream them from the video by index.


rule extract:
    input:
        video=video_path,
    output:
        probe=work("{video}").probe,
    log:
        LOGS / "extract" / "{video}.log",
    benchmark:
        BENCH / "extract" / "{video}.tsv"
    threads: res("extract", "threads")
    resources:
        mem_mb=res("extract", "mem_mb"),
        runtime=res("extract", "runtime"),
    params:
        audio=audio_path,
    shell:
        "nice-core probe {input.video:q} -o {output.probe:q} --audio {params.audio:q} > {log:q} 2>&1"
