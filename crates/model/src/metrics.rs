//! Metrics in the Prometheus text format (version 0.0.4): families of samples with labels, rendered by the
//! management API at `/metrics`. The daemon and the API each contribute families; nothing here keeps state.

use std::fmt::Write as _;

/// Counter (only grows while the daemon runs) or gauge (a level now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric: its name (with the `switchboard_` prefix; counters end in `_total`), help text and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Family {
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        Family { name, help, kind, samples: Vec::new() }
    }

    /// A family of one unlabelled sample.
    pub fn single(name: &'static str, help: &'static str, kind: Kind, value: f64) -> Family {
        Family::new(name, help, kind).with(&[], value)
    }

    /// Adds a sample with `labels`.
    pub fn with(mut self, labels: &[(&'static str, &str)], value: f64) -> Family {
        self.push(labels, value);
        self
    }

    pub fn push(&mut self, labels: &[(&'static str, &str)], value: f64) {
        self.samples.push(Sample { labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), value });
    }
}

/// The text exposition of `families`, in order.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for s in &f.samples {
            out.push_str(f.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                    let _ = write!(out, "{k}=\"{v}\"");
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(s.value));
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_labels_and_escapes() {
        let families = [
            Family::single("switchboard_bindings", "Bindings held.", Kind::Gauge, 3.0),
            Family::new("switchboard_gateway_up", "1 when the gateway answers.", Kind::Gauge)
                .with(&[("gateway", "carrier \"A\"\\1\nb")], 1.0)
                .with(&[("gateway", "b")], 0.5),
        ];
        assert_eq!(
            render(&families),
            "# HELP switchboard_bindings Bindings held.\n# TYPE switchboard_bindings gauge\nswitchboard_bindings 3\n\
             # HELP switchboard_gateway_up 1 when the gateway answers.\n# TYPE switchboard_gateway_up gauge\n\
             switchboard_gateway_up{gateway=\"carrier \\\"A\\\"\\\\1\\nb\"} 1\nswitchboard_gateway_up{gateway=\"b\"} 0.5\n"
        );
    }
}
