# The run's report: the data-set table (HTML, CSV, JSON) and one page per video.
# If some videos fail, the workflow's `onerror` handler writes the same report from the metrics that exist,
# listing the failed videos with their error lines (nice_core.report.run.build_report).
# The report also waits for every video's provenance record (rules/provenance.smk).


localrules:
    report,  # small; on a cluster it runs where snakemake runs, no job submitted


rule report:
    input:
        metrics=[work(name).metrics for name in VIDEOS],
        provenance=[work(name).provenance for name in VIDEOS],
    output:
        html=report(REPORT / "report.html", category="Data set"),
        csv=REPORT / "report.csv",
        json=REPORT / "report.json",
    log:
        LOGS / "report" / "report.log",
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    params:
        videos_dir=REPORT / "videos",
        names=VIDEO_NAMES,
    shell:
        "nice-core report {input.metrics:q} -o {output.html:q} --videos-dir {params.videos_dir:q}"
        " --expect {params.names} > {log:q} 2>&1"
