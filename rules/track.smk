# Face crop and alignment: track one subject, smooth the alignment, store crops/masks/landmarks in HDF5.


rule track:
    input:
        video=video_path,
        probe=WORK / "{video}" / "probe.json",
    output:
        store=WORK / "{video}" / "face.h5",
        **({"preview": WORK / "{video}" / "preview.mp4"} if PREVIEW else {}),
    params:
        out_dir=lambda wc: WORK / wc.video,
        flags=f"{FACE_FLAGS} {ENCODE_FLAGS}",
    log:
        LOGS / "track" / "{video}.log",
    benchmark:
        BENCH / "track" / "{video}.tsv"
    threads: res("track", "threads", 2)
    resources:
        mem_mb=res("track", "mem_mb", 3000),
        runtime=res("track", "runtime", 60),
    shell:
        "nice-core track {input.video:q} -o {params.out_dir:q} --probe {input.probe:q} {params.flags}"
        " > {log:q} 2>&1"
