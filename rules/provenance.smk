# Provenance: one record per video, <work>/<video>/provenance.json, written by `nice-core provenance` once
# the video's results exist: the run's config, package versions, seeds, and the SHA-256 of every input and
# result (nice_core/provenance/record.py). The report rule asks for every record, so `snakemake` writes them.


rule provenance:
    input:
        unpack(provenance_inputs),
        unpack(provenance_results),
    output:
        record=report(work("{video}").provenance, category="Provenance", labels={"video": "{video}"}),
    log:
        LOGS / "provenance" / "{video}.log",
    benchmark:
        BENCH / "provenance" / "{video}.tsv"
    threads: res("provenance", "threads")
    resources:
        mem_mb=res("provenance", "mem_mb"),
        runtime=res("provenance", "runtime"),
    params:
        flags=provenance_flags,
    shell:
        "nice-core provenance --name {wildcards.video:q} -o {output.record:q} {params.flags} > {log:q} 2>&1"
