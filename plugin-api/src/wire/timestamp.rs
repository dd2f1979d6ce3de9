//! Timestamps on the wire: RFC 3339 in UTC, written exactly as `chrono`'s `Serialize` writes a
//! `DateTime<Utc>` (`2026-11-25T02:24:46.123456Z`: fraction of 0, 3, 6 or 9 digits, `Z`).
//!
//! The form every taskhost timestamp takes (years 0–9999) is written and read by hand; anything
//! else — another offset, another number of fraction digits, a leap second, a signed year —
//! goes through `chrono`'s general code, so what plugins built against plugin-api 1.0 send and
//! read is unchanged. Used through `#[serde(with = "timestamp")]` on the wire types' fields.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike, Utc};
use serde::{de, Deserializer, Serializer};
use std::fmt;

/// The longest text of the fast form: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(super) const MAX_LEN: usize = 30;

/// `time` as chrono writes it, into `buf`; `None` for what the fast form does not cover.
pub(super) fn format_fast(time: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let naive = time.naive_utc();
    let year = naive.year();
    let nano = naive.nanosecond();
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    let two = |buf: &mut [u8; MAX_LEN], at: usize, value: u32| {
        buf[at] = b'0' + (value / 10) as u8;
        buf[at + 1] = b'0' + (value % 10) as u8;
    };
    let year = year as u32;
    two(buf, 0, year / 100);
    two(buf, 2, year % 100);
    buf[4] = b'-';
    two(buf, 5, naive.month());
    buf[7] = b'-';
    two(buf, 8, naive.day());
    buf[10] = b'T';
    two(buf, 11, naive.hour());
    buf[13] = b':';
    two(buf, 14, naive.minute());
    buf[16] = b':';
    two(buf, 17, naive.second());
    let (mut fraction, digits) = if nano == 0 {
        (0, 0)
    } else if nano % 1_000_000 == 0 {
        (nano / 1_000_000, 3)
    } else if nano % 1_000 == 0 {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    let mut len = 19;
    if digits > 0 {
        buf[len] = b'.';
        for i in (0..digits).rev() {
            buf[len + 1 + i] = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        len += 1 + digits;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Read the fast form; `None` for anything else (the caller falls back to chrono).
fn parse_fast(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits = |from: usize, count: usize| -> Option<u32> {
        b.get(from..from + count)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let fraction_len = b.len() - 20;
    let nano = match fraction_len {
        0 => 0,
        4 | 7 | 10 if b[19] == b'.' => {
            let digits_len = fraction_len - 1;
            digits(20, digits_len)? * 10u32.pow(9 - digits_len as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(digits(0, 4)? as i32, digits(5, 2)?, digits(8, 2)?)?;
    // A leap second (`:60`) is left to chrono.
    let time = date.and_hms_nano_opt(digits(11, 2)?, digits(14, 2)?, digits(17, 2)?, nano)?;
    Some(time.and_utc())
}

/// Read any RFC 3339 text chrono's `Deserialize` for `DateTime<Utc>` accepts.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_fast(text) {
        Some(time) => Ok(time),
        None => text
            .parse::<DateTime<FixedOffset>>()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// Serialize `Option<DateTime<Utc>>` as chrono does: `null` or the RFC 3339 string.
pub fn serialize<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(time) = time else {
        return serializer.serialize_none();
    };
    let mut buf = [0u8; MAX_LEN];
    match format_fast(time, &mut buf) {
        // Only ASCII digits and punctuation were written.
        Some(len) => serializer.serialize_some(std::str::from_utf8(&buf[..len]).unwrap_or("")),
        None => serializer.serialize_some(time),
    }
}

/// Deserialize `Option<DateTime<Utc>>` as chrono does: `null` or any RFC 3339 string.
pub fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    deserializer.deserialize_option(OptionVisitor)
}

struct OptionVisitor;

impl<'de> de::Visitor<'de> for OptionVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or an RFC 3339 formatted date and time string")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(TimeVisitor).map(Some)
    }
}

struct TimeVisitor;

impl de::Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    //! The fast form must be byte-for-byte what chrono writes, and read back what chrono reads.
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Fast(#[serde(with = "super")] Option<DateTime<Utc>>);

    fn chrono_json(time: &DateTime<Utc>) -> String {
        serde_json::to_string(time).unwrap()
    }

    /// Microseconds covering years 0 to 9999 and a bit beyond on both sides.
    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        let nanos = prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|ms| ms * 1_000_000),
            (0u32..1_000_000).prop_map(|us| us * 1_000),
            0u32..1_000_000_000,
            // A leap second, which chrono writes as `:60`.
            1_000_000_000u32..2_000_000_000,
        ];
        (-63_000_000_000i64..254_000_000_000, nanos).prop_map(|(secs, nano)| {
            let secs = if nano >= 1_000_000_000 {
                secs - secs.rem_euclid(86_400) + 86_399
            } else {
                secs
            };
            DateTime::from_timestamp(secs, nano).unwrap()
        })
    }

    #[test]
    fn null_and_missing_stay_none() {
        assert_eq!(serde_json::to_string(&Fast(None)).unwrap(), "null");
        assert_eq!(serde_json::from_str::<Fast>("null").unwrap(), Fast(None));
    }

    #[test]
    fn other_offsets_and_precisions_are_read_as_chrono_reads_them() {
        for text in [
            "2026-11-25T03:24:46+01:00",
            "2026-11-25T02:24:46.1Z",
            "2026-11-25t02:24:46z",
            "2026-11-25 02:24:46Z",
            "2016-12-31T23:59:60.5Z",
            "+12026-11-25T02:24:46Z",
        ] {
            let ours: Fast = serde_json::from_str(&format!("{text:?}")).unwrap();
            let chrono: DateTime<Utc> = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(ours.0, Some(chrono), "{text}");
        }
        let err = serde_json::from_str::<Fast>("\"2026-02-30T00:00:00Z\"").unwrap_err();
        let chrono = serde_json::from_str::<DateTime<Utc>>("\"2026-02-30T00:00:00Z\"");
        assert_eq!(err.to_string(), chrono.unwrap_err().to_string());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn writes_what_chrono_writes_and_reads_it_back(time in any_time()) {
            let text = serde_json::to_string(&Fast(Some(time))).unwrap();
            prop_assert_eq!(&text, &chrono_json(&time));
            prop_assert_eq!(serde_json::from_str::<Fast>(&text).unwrap(), Fast(Some(time)));
        }

        #[test]
        fn reads_any_text_as_chrono_does(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|z|[+-][0-9]{2}:[0-9]{2})?"
        ) {
            let json = format!("{text:?}");
            let ours = serde_json::from_str::<Fast>(&json).map(|f| f.0).map_err(|e| e.to_string());
            let chrono = serde_json::from_str::<DateTime<Utc>>(&json)
                .map(Some)
                .map_err(|e| e.to_string());
            prop_assert_eq!(ours, chrono);
        }
    }
}
