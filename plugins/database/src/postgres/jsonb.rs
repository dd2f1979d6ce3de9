//! [`JsonText`]: `json`/`jsonb` values as their text, both ways, so a task's arguments and
//! return value are never parsed here (PostgreSQL checks what it stores).

use bytes::BytesMut;
use postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use std::error::Error;

/// The text of a `json` or `jsonb` value: a parameter written as it is, a column read as the
/// server renders it (`jsonb`: keys reordered, `", "` and `": "` between items).
#[derive(Debug)]
pub struct JsonText<'a>(pub &'a str);

/// The only binary `jsonb` format there is: a version byte, then the text.
const JSONB_VERSION: u8 = 1;

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[JSONB_VERSION]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    accepts!(JSON, JSONB);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = match (*ty == Type::JSONB, raw.split_first()) {
            (false, _) => raw,
            (true, Some((&JSONB_VERSION, text))) => text,
            (true, _) => return Err("unsupported JSONB encoding version".into()),
        };
        Ok(Self(std::str::from_utf8(text)?))
    }

    accepts!(JSON, JSONB);
}
