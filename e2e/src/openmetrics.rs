//! A strict parser of the OpenMetrics 1.0 text format, for the metrics e2e test: it
//! refuses anything a Prometheus server scraping with the OpenMetrics parser would refuse
//! (and a few things it would only frown on), so "the exposition parses" means something.
//!
//! Checked: `# EOF` ends the text, once, with nothing after it and no blank line anywhere;
//! each family is declared (`# TYPE`) before its samples and appears once; `# UNIT` matches
//! the name's suffix; sample names are the family's name plus a suffix its type allows;
//! label names are valid and unique, values correctly quoted and escaped; no sample
//! repeats; counters are non-negative; histograms have cumulative buckets in increasing
//! `le` order ending at `+Inf`, whose count equals `_count`, and a `_sum`; exemplars sit
//! only on counters' `_total` and histograms' `_bucket` lines, within their bucket.

use std::collections::{BTreeMap, BTreeSet};

/// Labels of a sample, by name.
pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "gaugehistogram" => Kind::GaugeHistogram,
            "summary" => Kind::Summary,
            "info" => Kind::Info,
            "stateset" => Kind::StateSet,
            "unknown" => Kind::Unknown,
            _ => return None,
        })
    }

    /// Suffixes a sample name may add to its family's name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Counter => &["_total", "_created"],
            Kind::Gauge | Kind::StateSet | Kind::Unknown => &[""],
            Kind::Histogram => &["_bucket", "_count", "_sum", "_created"],
            Kind::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            Kind::Summary => &["", "_count", "_sum", "_created"],
            Kind::Info => &["_info"],
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    pub exemplar: Option<Exemplar>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Samples named `name` whose labels include every pair of `labels`.
    pub fn samples<'a>(&'a self, name: &'a str, labels: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a Sample> {
        self.families.iter().flat_map(|f| f.samples.iter()).filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum of the values of [`Exposition::samples`]; `None` when there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let values: Vec<f64> = self.samples(name, labels).map(|s| s.value).collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if text.is_empty() || text.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => {
            Err(format!("not a number: {text:?}"))
        }
        _ => text.parse::<f64>().map_err(|_| format!("not a number: {text:?}")),
    }
}

/// Parses `{name="value",...}` at the start of `text`; returns the labels and the rest.
fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    let mut labels = Labels::new();
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("invalid escape in label value: {other:?}")),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest.strip_prefix(',').ok_or("labels must be separated by ,")?;
    }
}

/// Splits `value [timestamp]` and checks there is nothing else.
fn parse_value_and_timestamp(text: &str) -> Result<f64, String> {
    let mut parts = text.split(' ');
    let value = parse_value(parts.next().unwrap_or(""))?;
    if let Some(timestamp) = parts.next() {
        parse_value(timestamp)?;
    }
    if parts.next().is_some() {
        return Err(format!("unexpected text after the value: {text:?}"));
    }
    Ok(value)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("sample without value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (Labels::new(), &line[name_end..])
    };
    let rest = rest.strip_prefix(' ').ok_or("a single space must precede the value")?;
    let (value_part, exemplar) = match rest.split_once(" # ") {
        Some((value_text, exemplar)) => {
            let (labels, after) = parse_labels(exemplar)?;
            let after = after.strip_prefix(' ').ok_or("exemplar without value")?;
            let value = parse_value_and_timestamp(after)?;
            let length: usize = labels.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum();
            if length > 128 {
                return Err("exemplar labels longer than 128 characters".into());
            }
            (value_text, Some(Exemplar { labels, value }))
        }
        None => (rest, None),
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: parse_value_and_timestamp(value_part)?,
        exemplar,
    })
}

/// Parses and checks an OpenMetrics text exposition.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .or_else(|| text.strip_suffix("# EOF"))
        .ok_or("the exposition does not end with # EOF")?;
    let mut exposition = Exposition::default();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut typed: BTreeSet<String> = BTreeSet::new();
    for (index, line) in body.lines().enumerate() {
        let at = |message: String| format!("line {}: {message}: {line:?}", index + 1);
        if line.is_empty() {
            return Err(at("blank line".into()));
        }
        if line == "# EOF" {
            return Err(at("# EOF before the end".into()));
        }
        if let Some(descriptor) = line.strip_prefix("# ") {
            let mut parts = descriptor.splitn(3, ' ');
            let (keyword, name, value) = (parts.next(), parts.next(), parts.next());
            let (Some(keyword), Some(name)) = (keyword, name) else {
                return Err(at("incomplete descriptor".into()));
            };
            if !valid_name(name) {
                return Err(at(format!("invalid family name {name:?}")));
            }
            let current = exposition.families.last_mut().filter(|f| f.name == name);
            match (keyword, current) {
                ("TYPE", None) => {
                    if !declared.insert(name.to_string()) {
                        return Err(at(format!("family {name} appears twice")));
                    }
                    let kind = value.and_then(Kind::parse).ok_or_else(|| at("unknown type".into()))?;
                    typed.insert(name.to_string());
                    exposition.families.push(Family {
                        name: name.to_string(),
                        kind,
                        help: None,
                        unit: None,
                        samples: Vec::new(),
                    });
                }
                ("TYPE", Some(family)) if family.samples.is_empty() && !typed.contains(name) => {
                    family.kind = value.and_then(Kind::parse).ok_or_else(|| at("unknown type".into()))?;
                    typed.insert(name.to_string());
                }
                ("TYPE", Some(_)) => return Err(at("second or late TYPE for a family".into())),
                ("HELP", Some(family)) if family.samples.is_empty() && family.help.is_none() => {
                    family.help = Some(value.unwrap_or("").to_string());
                }
                ("UNIT", Some(family))
                    if family.samples.is_empty() && family.unit.is_none() && typed.contains(name) =>
                {
                    let unit = value.unwrap_or("");
                    if !name.ends_with(&format!("_{unit}")) {
                        return Err(at(format!("family {name} does not end with its unit {unit}")));
                    }
                    family.unit = Some(unit.to_string());
                }
                ("HELP" | "UNIT", None) => {
                    // Help before type is allowed by the spec; kongress's encoder puts
                    // HELP first, so a family may start with it.
                    if !declared.insert(name.to_string()) {
                        return Err(at(format!("family {name} appears twice")));
                    }
                    exposition.families.push(Family {
                        name: name.to_string(),
                        kind: Kind::Unknown,
                        help: (keyword == "HELP").then(|| value.unwrap_or("").to_string()),
                        unit: None,
                        samples: Vec::new(),
                    });
                    if keyword == "UNIT" {
                        return Err(at("UNIT before TYPE".into()));
                    }
                }
                _ => return Err(at(format!("misplaced or repeated {keyword}"))),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("comment lines are not allowed".into()));
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = exposition
            .families
            .last_mut()
            .ok_or_else(|| at("sample before any family".into()))?;
        let suffix = sample
            .name
            .strip_prefix(&family.name)
            .ok_or_else(|| at(format!("sample outside its family {}", family.name)))?;
        if !family.kind.suffixes().contains(&suffix) {
            return Err(at(format!("suffix {suffix:?} not allowed for a {:?}", family.kind)));
        }
        if sample.exemplar.is_some()
            && !matches!(
                (family.kind, suffix),
                (Kind::Counter, "_total") | (Kind::Histogram | Kind::GaugeHistogram, "_bucket")
            )
        {
            return Err(at("exemplar on a line that cannot carry one".into()));
        }
        if family.kind == Kind::Counter && suffix == "_total" && (sample.value.is_nan() || sample.value < 0.0) {
            return Err(at("counter below zero or NaN".into()));
        }
        if family
            .samples
            .iter()
            .any(|s| s.name == sample.name && s.labels == sample.labels)
        {
            return Err(at("sample repeated".into()));
        }
        family.samples.push(sample);
    }
    for family in &exposition.families {
        if family.kind == Kind::Histogram {
            check_histogram(family)?;
        }
    }
    Ok(exposition)
}

fn check_histogram(family: &Family) -> Result<(), String> {
    let name = &family.name;
    let mut series: BTreeMap<Labels, Vec<&Sample>> = BTreeMap::new();
    for sample in family.samples.iter().filter(|s| s.name == format!("{name}_bucket")) {
        let mut labels = sample.labels.clone();
        if labels.remove("le").is_none() {
            return Err(format!("{name}: bucket without le"));
        }
        series.entry(labels).or_default().push(sample);
    }
    for (labels, buckets) in &series {
        let mut previous_bound = f64::NEG_INFINITY;
        let mut previous_count = 0.0;
        for bucket in buckets {
            let bound = parse_value(&bucket.labels["le"])?;
            if bound <= previous_bound {
                return Err(format!("{name} {labels:?}: le not increasing at {bound}"));
            }
            if bucket.value < previous_count {
                return Err(format!("{name} {labels:?}: buckets not cumulative at le={bound}"));
            }
            if let Some(exemplar) = &bucket.exemplar
                && (exemplar.value.is_nan() || exemplar.value > bound || exemplar.value <= previous_bound)
            {
                return Err(format!(
                    "{name} {labels:?}: exemplar {} outside bucket le={bound}",
                    exemplar.value
                ));
            }
            previous_bound = bound;
            previous_count = bucket.value;
        }
        if previous_bound != f64::INFINITY {
            return Err(format!("{name} {labels:?}: no +Inf bucket"));
        }
        let lookup = |suffix: &str| {
            family
                .samples
                .iter()
                .find(|s| s.name == format!("{name}{suffix}") && &s.labels == labels)
        };
        let count = lookup("_count").ok_or_else(|| format!("{name} {labels:?}: no _count"))?;
        if count.value != previous_count {
            return Err(format!(
                "{name} {labels:?}: _count {} differs from the +Inf bucket {previous_count}",
                count.value
            ));
        }
        lookup("_sum").ok_or_else(|| format!("{name} {labels:?}: no _sum"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# HELP app_requests Requests.
# TYPE app_requests counter
app_requests_total{path=\"/a\"} 3 # {trace_id=\"abc\"} 1.0
app_requests_total{path=\"/b \\\"q\\\"\"} 0
# HELP app_latency_seconds Latency.
# TYPE app_latency_seconds histogram
# UNIT app_latency_seconds seconds
app_latency_seconds_sum 0.7
app_latency_seconds_count 2
app_latency_seconds_bucket{le=\"0.1\"} 0
app_latency_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"def\"} 0.3
app_latency_seconds_bucket{le=\"+Inf\"} 2
# HELP app_up Up.
# TYPE app_up gauge
app_up 1
# EOF
";

    #[test]
    fn a_valid_exposition_parses_with_its_values_and_exemplars() {
        let exposition = parse(GOOD).expect("valid");
        assert_eq!(exposition.families.len(), 3);
        assert_eq!(exposition.sum("app_requests_total", &[]), Some(3.0));
        assert_eq!(exposition.sum("app_requests_total", &[("path", "/b \"q\"")]), Some(0.0));
        let bucket = exposition
            .samples("app_latency_seconds_bucket", &[("le", "0.5")])
            .next()
            .expect("bucket");
        assert_eq!(
            bucket.exemplar.as_ref().map(|e| e.labels["trace_id"].as_str()),
            Some("def")
        );
        assert_eq!(
            exposition.family("app_latency_seconds").map(|f| f.unit.clone()),
            Some(Some("seconds".into()))
        );
    }

    #[test]
    fn broken_expositions_are_refused() {
        let cases = [
            ("no EOF", GOOD.replace("# EOF\n", "")),
            ("text after EOF", format!("{GOOD}app_up 1\n")),
            (
                "blank line",
                GOOD.replace("# TYPE app_up gauge\n", "# TYPE app_up gauge\n\n"),
            ),
            ("sample of an undeclared family", GOOD.replace("app_up 1", "other_up 1")),
            (
                "wrong suffix for a counter",
                GOOD.replace("app_requests_total{path=\"/a\"}", "app_requests{path=\"/a\"}"),
            ),
            ("unquoted label value", GOOD.replace("path=\"/a\"", "path=/a")),
            ("bad escape", GOOD.replace("\\\"q\\\"", "\\q")),
            (
                "repeated label",
                GOOD.replace("{path=\"/a\"}", "{path=\"/a\",path=\"/c\"}"),
            ),
            ("repeated sample", GOOD.replace("path=\"/b \\\"q\\\"\"", "path=\"/a\"")),
            ("negative counter", GOOD.replace("} 0\n", "} -1\n")),
            ("not a number", GOOD.replace("app_up 1", "app_up one")),
            ("buckets not cumulative", GOOD.replace("le=\"0.5\"} 1", "le=\"0.5\"} 3")),
            (
                "no +Inf bucket",
                GOOD.replace("app_latency_seconds_bucket{le=\"+Inf\"} 2\n", ""),
            ),
            (
                "count differs from +Inf",
                GOOD.replace("app_latency_seconds_count 2", "app_latency_seconds_count 5"),
            ),
            ("exemplar outside its bucket", GOOD.replace("0.3", "0.05")),
            (
                "exemplar on a gauge",
                GOOD.replace("app_up 1", "app_up 1 # {trace_id=\"x\"} 1"),
            ),
            (
                "family twice",
                format!(
                    "{}# TYPE app_requests counter\napp_requests_total 2\n# EOF\n",
                    GOOD.replace("# EOF\n", "")
                ),
            ),
            (
                "unit not in the name",
                GOOD.replace("# UNIT app_latency_seconds seconds", "# UNIT app_latency_seconds bytes"),
            ),
            (
                "comment line",
                GOOD.replace("# HELP app_up Up.\n", "# HELP app_up Up.\n# hello\n"),
            ),
        ];
        for (rule, text) in cases {
            assert!(parse(&text).is_err(), "{rule} must be refused:\n{text}");
        }
    }
}
