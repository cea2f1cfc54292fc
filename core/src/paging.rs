//! Page tokens as MLflow writes them: base64 of `{"offset": N}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{Error, Result};

/// One page of a search: its items and, when more remain, the token of the next page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// The page of a query that fetched up to `limit + 1` rows from `offset`: at most `limit`
    /// items, and a token for the next page when the extra row shows more remain.
    pub fn from_overfetch(mut items: Vec<T>, offset: i64, limit: i64) -> Page<T> {
        let more = items.len() as i64 > limit;
        items.truncate(limit.max(0) as usize);
        Page {
            items,
            next_page_token: more.then(|| encode_offset(offset + limit)),
        }
    }
}

/// Encodes the offset of the next page.
pub fn encode_offset(offset: i64) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a page token; an empty or absent token is offset 0.
pub fn decode_offset(token: Option<&str>) -> Result<i64> {
    let token = match token {
        None | Some("") => return Ok(0),
        Some(t) => t,
    };
    let bytes = STANDARD.decode(token.trim()).map_err(|_| {
        Error::invalid(format!(
            "Invalid page token, could not base64-decode: {token}"
        ))
    })?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        Error::invalid(format!(
            "Invalid page token, decoded value={}",
            String::from_utf8_lossy(&bytes)
        ))
    })?;
    let offset = json
        .get("offset")
        .ok_or_else(|| Error::invalid(format!("Invalid page token, parsed value={json}")))?;
    match offset.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(Error::invalid(format!(
            "Invalid page token, offset {offset} is not a non-negative integer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overfetched_rows_become_a_page_and_a_token() {
        let page = Page::from_overfetch(vec![1, 2, 3], 10, 2);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(decode_offset(page.next_page_token.as_deref()).unwrap(), 12);
        assert!(Page::from_overfetch(vec![1, 2], 0, 2)
            .next_page_token
            .is_none());
    }

    #[test]
    fn offsets_round_trip_through_tokens() {
        assert_eq!(decode_offset(Some(&encode_offset(250))).unwrap(), 250);
        assert_eq!(decode_offset(None).unwrap(), 0);
    }

    #[test]
    fn garbage_tokens_are_invalid_parameter_values() {
        let err = decode_offset(Some("not base64!!")).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidParameterValue);
        assert!(decode_offset(Some(&STANDARD.encode("{\"offset\": -3}"))).is_err());
    }
}
