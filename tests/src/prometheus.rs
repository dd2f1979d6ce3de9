//! Reading Prometheus's text exposition format: what `worker --metrics` and the dashboard's
//! `/metrics` serve.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One sample line: `name{label="value",…} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name (with its `_bucket`/`_sum`/`_count` suffix for a histogram's lines).
    pub name: String,
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample line of `text` (comments and blank lines skipped). Label values are read up
/// to their closing quote, with `\"`, `\\` and `\n` unescaped.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample line: {line}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, mut rest) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '"' => break at,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The value of the sample `name` whose labels are exactly `labels`, if `text` has it.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples(text)
        .into_iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// `GET http://addr/path` over plain HTTP/1.0: the status code, the headers' text and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, head.to_string(), body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines_are_read_with_their_labels() {
        let text = "# HELP x_total Some.\n# TYPE x_total counter\n\
                    x_total{a=\"1\",b=\"q \\\"x\\\", y\"} 3\nplain 1.5\nh_bucket{le=\"+Inf\"} 2\n";
        let all = samples(text);
        assert_eq!(all.len(), 3);
        assert_eq!(
            value(text, "x_total", &[("a", "1"), ("b", "q \"x\", y")]),
            Some(3.0)
        );
        assert_eq!(value(text, "plain", &[]), Some(1.5));
        assert_eq!(value(text, "h_bucket", &[("le", "+Inf")]), Some(2.0));
        assert_eq!(value(text, "x_total", &[("a", "1")]), None);
    }
}
