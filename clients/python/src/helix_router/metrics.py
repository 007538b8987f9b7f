"""`GET /metrics`, parsed by `prometheus_client`'s own text parser into samples that can be
summed by label, as a dashboard query would."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: its full name (`helix_jobs_total`,
    `helix_job_latency_seconds_bucket`), its labels and its value."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Metrics:
    """A scrape: every sample, each family's type and help, and the text it came from."""

    samples: list[Sample]
    types: dict[str, str]
    help: dict[str, str]
    text: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: list[Sample] = []
        types: dict[str, str] = {}
        helps: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            helps[family.name] = family.documentation
            samples.extend(Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples)
        return cls(samples=samples, types=types, help=helps, text=text)

    def names(self) -> set[str]:
        """Every sample name in the scrape."""
        return {s.name for s in self.samples}

    def select(self, name: str, **labels: str) -> list[Sample]:
        """The samples named `name` whose labels include every `labels` pair."""
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def known(self, name: str) -> bool:
        """Whether the scrape has the metric `name`, with samples or only its `# TYPE` line (a
        labelled counter before its first count)."""
        if name in self.names() or name in self.types:
            return True
        return any(name.endswith(suffix) and name[: -len(suffix)] in self.types for suffix in _SUFFIXES)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include every `labels` pair (0 when
        none match, as for a counter that has not counted yet); a `KeyError` for a name the
        scrape does not have at all, since that is a typo rather than a zero."""
        if not self.known(name):
            stem = name.rsplit("_", 1)[0]
            close = sorted(n for n in self.names() if n.startswith(stem))[:5]
            raise KeyError(f"no metric {name!r} in the scrape" + (f"; similar: {close}" if close else ""))
        return sum(s.value for s in self.select(name, **labels))


# What a family's samples add to its name (counters, histograms, summaries).
_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count")
