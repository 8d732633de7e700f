# The detection study (paper Sec. 4.4, nice_core.detect): with `detector.index` set, every video of the
# index is tracked (rules/track.smk; an FF++ fake is cut through its original's store), its face clips are
# cut (from FF++ videos re-encoded like the refined ones: detector.parity), a detector is trained per
# condition and seed (the same seeds, steps and clips for every condition), scored on every test set, and
# summarised in results/detect/report/. Training checkpoints live in the run folder, not declared: a killed
# or preempted training job resumes when the workflow is rerun.


rule detect_parity:
    input:
        video=detect_source,
    output:
        video=temp(DETECT / "parity" / "{entry}.mp4"),  # gone once its clips are cut
    log:
        LOGS / "detect_parity" / "{entry}.log",
    benchmark:
        BENCH / "detect_parity" / "{entry}.tsv"
    threads: res("detect_parity", "threads")
    resources:
        mem_mb=res("detect_parity", "mem_mb"),
        runtime=res("detect_parity", "runtime"),
    params:
        flags=detect_reencode_flags,
    shell:
        "nice-core detect reencode {input.video:q} -o {output.video:q} {params.flags} > {log:q} 2>&1"


use rule detect_parity as detect_probe_video with:
    output:
        video=temp(DETECT / "probe" / "{entry}.mp4"),
    log:
        LOGS / "detect_probe_video" / "{entry}.log",
    benchmark:
        BENCH / "detect_probe_video" / "{entry}.tsv"
    params:
        flags=lambda wildcards: detect_reencode_flags(wildcards, probe=True),


rule detect_clips:
    input:
        video=detect_video,
        store=detect_store,
    output:
        clips=DETECT / "clips" / "{entry}.h5",
    log:
        LOGS / "detect_clips" / "{entry}.log",
    benchmark:
        BENCH / "detect_clips" / "{entry}.tsv"
    threads: res("detect_clips", "threads")
    resources:
        mem_mb=res("detect_clips", "mem_mb"),
        runtime=res("detect_clips", "runtime"),
    params:
        flags=flags("detector.clips"),
    shell:
        "nice-core detect clips {input.video:q} --store {input.store:q} -o {output.clips:q}"
        " {params.flags} > {log:q} 2>&1"


use rule detect_clips as detect_probe_clips with:
    input:
        video=detect_probe_video,
        store=detect_store,
    output:
        clips=DETECT / "probe_clips" / "{entry}.h5",
    log:
        LOGS / "detect_probe_clips" / "{entry}.log",
    benchmark:
        BENCH / "detect_probe_clips" / "{entry}.tsv"
    params:
        flags=detect_probe_clip_flags,


rule detect_train:
    input:
        index=config["detector"]["index"] or [],
        clips=detect_training_clips,
    output:
        model=DETECT / "runs" / "{condition}-{seed}" / "model.safetensors",
        record=DETECT / "runs" / "{condition}-{seed}" / "train.json",
    log:
        LOGS / "detect_train" / "{condition}-{seed}.log",
    benchmark:
        BENCH / "detect_train" / "{condition}-{seed}.tsv"
    threads: res("detect_train", "threads")
    resources:
        mem_mb=res("detect_train", "mem_mb"),
        runtime=res("detect_train", "runtime"),
        gpu=res("detect_train", "gpu"),
        slurm_extra=res("detect_train", "slurm_extra"),
    params:
        clips_dir=DETECT / "clips",
        run_dir=detect_run_dir,
        sources=detect_sources,
        flags=flags("detector.train"),
    shell:
        "nice-core detect train --index {input.index:q} --clips-dir {params.clips_dir:q}"
        " --condition {wildcards.condition:q} --sources {params.sources:q} --seed {wildcards.seed}"
        " --run-dir {params.run_dir:q} --threads {threads} {params.flags} > {log:q} 2>&1"


rule detect_eval:
    input:
        index=config["detector"]["index"] or [],
        model=DETECT / "runs" / "{condition}-{seed}" / "model.safetensors",
        clips=detect_eval_clips,
        probe=detect_probe_clips,
    output:
        record=DETECT / "evals" / "{condition}-{seed}-{test_set}.json",
    log:
        LOGS / "detect_eval" / "{condition}-{seed}-{test_set}.log",
    benchmark:
        BENCH / "detect_eval" / "{condition}-{seed}-{test_set}.tsv"
    threads: res("detect_eval", "threads")
    resources:
        mem_mb=res("detect_eval", "mem_mb"),
        runtime=res("detect_eval", "runtime"),
        gpu=res("detect_eval", "gpu"),
        slurm_extra=res("detect_eval", "slurm_extra"),
    params:
        clips_dir=DETECT / "clips",
        probe=detect_probe_flags,
        device=config["detector"]["train"]["device"],
        precision=config["detector"]["train"]["precision"],
    shell:
        "nice-core detect eval --model {input.model:q} --index {input.index:q} --clips-dir {params.clips_dir:q}"
        " --test-set {wildcards.test_set} -o {output.record:q} --device {params.device}"
        " --precision {params.precision} --threads {threads} {params.probe} > {log:q} 2>&1"


localrules:
    detect_report,  # small; on a cluster it runs where snakemake runs


rule detect_report:
    input:
        records=detect_evals(),
    output:
        html=report(DETECT / "report" / "detection.html", category="Detection study"),
        csv=DETECT / "report" / "detection.csv",
        json=DETECT / "report" / "detection.json",
    log:
        LOGS / "detect_report" / "detection.log",
    threads: res("detect_report", "threads")
    resources:
        mem_mb=res("detect_report", "mem_mb"),
        runtime=res("detect_report", "runtime"),
    params:
        report_dir=DETECT / "report",
        baseline=config["detector"]["baseline"],
    shell:
        "nice-core detect report {input.records:q} --report-dir {params.report_dir:q}"
        " --baseline {params.baseline:q} > {log:q} 2>&1"
