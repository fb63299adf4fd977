//! `nextToken` / `maxResults` as ECS list operations use them.

use berth_aws_protocol::AwsError;

use crate::error::ApiResult;

/// Validated paging parameters of one list request.
pub struct Page {
    /// The key the previous page ended with.
    pub after: Option<String>,
    pub limit: usize,
}

impl Page {
    /// `maxResults` must be 1..=100; `default_limit` applies when it is absent.
    pub fn new(next_token: Option<&str>, max_results: Option<i64>, default_limit: usize) -> ApiResult<Self> {
        let limit = match max_results {
            None => default_limit,
            Some(n) if (1..=100).contains(&n) => n as usize,
            Some(n) => {
                return Err(AwsError::invalid_parameter(format!(
                    "maxResults must be between 1 and 100, got {n}."
                ))
                .into());
            }
        };
        let after = next_token.map(decode).transpose()?;
        Ok(Self { after, limit })
    }

    /// Fetch one more than the page to know whether another page follows.
    pub fn fetch_limit(&self) -> usize {
        self.limit + 1
    }

    /// Trims `items` to the page and returns the token for the next one.
    pub fn finish<T>(&self, items: &mut Vec<T>, key: impl Fn(&T) -> String) -> Option<String> {
        if items.len() <= self.limit {
            return None;
        }
        items.truncate(self.limit);
        items.last().map(|last| encode(&key(last)))
    }
}

/// Tokens are opaque to clients: the hex of the last key.
fn encode(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(token: &str) -> ApiResult<String> {
    let invalid = || AwsError::invalid_parameter("Invalid nextToken.");
    if token.len() % 2 != 0 || token.len() > 2048 {
        return Err(invalid().into());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    Ok(String::from_utf8(bytes).map_err(|_| invalid())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode(&encode("web:12")).unwrap(), "web:12");
        assert!(decode("zz").is_err());
        assert!(decode("abc").is_err());
        assert!(Page::new(None, Some(0), 10).is_err());
        assert!(Page::new(None, Some(101), 10).is_err());
        let page = Page::new(None, Some(2), 10).unwrap();
        let mut items = vec!["a", "b", "c"];
        let token = page.finish(&mut items, |s| s.to_string());
        assert_eq!(items, ["a", "b"]);
        assert_eq!(decode(&token.unwrap()).unwrap(), "b");
    }
}
