//! `nextToken` / `maxResults` pagination of the `List*` operations.
//!
//! Why: every `List*` operation of ECS (and most of Application Auto Scaling and Cloud Map)
//! pages with an opaque `nextToken` and a `maxResults` limit, and the CLI's auto-pagination
//! follows the tokens until none comes back. The token here is keyset-based: it carries the sort
//! key of the last item returned, so a page never repeats or skips an item when others are added
//! or removed between calls (an offset would), and a SQL read model can page with
//! `WHERE key > ? ORDER BY key LIMIT n + 1`.
//!
//! The token is base64url of a versioned key. It is not signed: forging one only moves where a
//! listing starts, and every filter still applies. ECS answers a bad token or an out-of-range
//! `maxResults` with `InvalidParameterException` (the [`From`] conversion below); services with
//! other codes (Application Auto Scaling's `InvalidNextTokenException`, Cloud Map's
//! `InvalidInput`) map [`PaginationError`] themselves.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AwsError;

const TOKEN_PREFIX: &str = "b1:";
/// Longest key a token may carry (ECS limits `nextToken` inputs to a few KiB anyway).
const MAX_KEY_LEN: usize = 2048;

/// Why pagination input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaginationError {
    /// `maxResults` out of its range.
    #[error(
        "1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy \
         constraint: Member must have value {constraint}"
    )]
    MaxResults {
        /// The value given.
        value: i32,
        /// `greater than or equal to 1`, `less than or equal to 100`.
        constraint: String,
    },
    /// A `nextToken` this service did not hand out.
    #[error("Invalid nextToken: it was not returned by a previous call of this operation.")]
    InvalidToken,
}

impl From<PaginationError> for AwsError {
    fn from(error: PaginationError) -> Self {
        AwsError::invalid_parameter(error.to_string())
    }
}

/// The default and largest page size of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// Items per page when `maxResults` is absent.
    pub default: u32,
    /// The largest `maxResults` accepted.
    pub max: u32,
}

impl PageLimits {
    /// ECS `ListClusters`, `ListTasks`, ...: default 100, 1 to 100.
    pub const ECS: PageLimits = PageLimits {
        default: 100,
        max: 100,
    };
    /// ECS `ListServices`: default 10, 1 to 100.
    pub const ECS_LIST_SERVICES: PageLimits = PageLimits {
        default: 10,
        max: 100,
    };

    /// Limits with the given default and maximum.
    pub const fn new(default: u32, max: u32) -> Self {
        PageLimits { default, max }
    }
}

/// Encodes the sort key of the last item of a page as a `nextToken`.
pub fn encode_token(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{last_key}"))
}

/// Decodes a `nextToken` into the sort key to continue after.
pub fn decode_token(token: &str) -> Result<String, PaginationError> {
    if token.len() > 4 * MAX_KEY_LEN {
        return Err(PaginationError::InvalidToken);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| PaginationError::InvalidToken)?;
    let text = String::from_utf8(bytes).map_err(|_| PaginationError::InvalidToken)?;
    match text.strip_prefix(TOKEN_PREFIX) {
        Some(key) if key.len() <= MAX_KEY_LEN => Ok(key.to_owned()),
        _ => Err(PaginationError::InvalidToken),
    }
}

/// A validated page request: how many items, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items in this page.
    pub limit: usize,
    /// Continue after this sort key (`None`: from the start).
    pub after: Option<String>,
}

impl PageRequest {
    /// Validates `maxResults` (1..=`limits.max`) and decodes `nextToken`.
    pub fn new(
        max_results: Option<i32>,
        next_token: Option<&str>,
        limits: PageLimits,
    ) -> Result<Self, PaginationError> {
        let limit = match max_results {
            None => limits.default,
            Some(value) if value < 1 => {
                return Err(PaginationError::MaxResults {
                    value,
                    constraint: "greater than or equal to 1".to_owned(),
                });
            }
            Some(value) => match u32::try_from(value) {
                Ok(value) if value <= limits.max => value,
                _ => {
                    return Err(PaginationError::MaxResults {
                        value,
                        constraint: format!("less than or equal to {}", limits.max),
                    });
                }
            },
        };
        let after = match next_token {
            // The CLI and SDKs never send an empty token; treat one as "from the start".
            None | Some("") => None,
            Some(token) => Some(decode_token(token)?),
        };
        Ok(PageRequest {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            after,
        })
    }

    /// How many rows to fetch to know whether another page follows: `limit + 1`.
    pub fn fetch_limit(&self) -> usize {
        self.limit.saturating_add(1)
    }

    /// Turns the rows fetched after `self.after` (sorted by key, at most [`Self::fetch_limit`]
    /// used) into the page and its `nextToken`.
    pub fn finish<T, K: AsRef<str>>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> (Vec<T>, Option<String>) {
        if rows.len() <= self.limit {
            return (rows, None);
        }
        rows.truncate(self.limit);
        let token = rows.last().map(|last| encode_token(key(last).as_ref()));
        (rows, token)
    }
}

/// Pages an in-memory list sorted by `key` (ascending, unique keys): validates `maxResults`,
/// decodes `nextToken`, and returns the page and the next token.
pub fn paginate<T, K: AsRef<str>>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
    max_results: Option<i32>,
    next_token: Option<&str>,
    limits: PageLimits,
) -> Result<(Vec<T>, Option<String>), PaginationError> {
    let request = PageRequest::new(max_results, next_token, limits)?;
    let rest: Vec<T> = match &request.after {
        None => items,
        Some(after) => items
            .into_iter()
            .filter(|item| key(item).as_ref() > after.as_str())
            .collect(),
    };
    let rows: Vec<T> = rest.into_iter().take(request.fetch_limit()).collect();
    Ok(request.finish(rows, key))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count)
            .map(|index| format!("cluster-{index:03}"))
            .collect()
    }

    #[test]
    fn tokens_round_trip_and_are_opaque() {
        let token = encode_token("arn:aws:ecs:us-east-1:1:cluster/a b/é");
        assert!(
            token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        );
        assert_eq!(
            decode_token(&token),
            Ok("arn:aws:ecs:us-east-1:1:cluster/a b/é".to_owned())
        );
        for bad in ["", "!!!", "bm9wZQ", "YjE6\u{e9}", &"A".repeat(10_000)] {
            assert_eq!(
                decode_token(bad),
                Err(PaginationError::InvalidToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_follow_each_other_without_gaps() {
        let items = names(25);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let (page, next) = paginate(
                items.clone(),
                |item| item.clone(),
                Some(10),
                token.as_deref(),
                PageLimits::ECS,
            )
            .expect("valid page");
            pages += 1;
            seen.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, items);
    }

    #[test]
    fn an_exact_multiple_has_no_trailing_empty_page() {
        let (page, next) = paginate(
            names(10),
            |item| item.clone(),
            Some(10),
            None,
            PageLimits::ECS,
        )
        .expect("page");
        assert_eq!(page.len(), 10);
        assert_eq!(next, None);
    }

    #[test]
    fn defaults_and_ranges() {
        let (page, next) =
            paginate(names(150), |item| item.clone(), None, None, PageLimits::ECS).expect("page");
        assert_eq!(page.len(), 100);
        assert!(next.is_some());
        let (page, _) = paginate(
            names(150),
            |item| item.clone(),
            None,
            None,
            PageLimits::ECS_LIST_SERVICES,
        )
        .expect("page");
        assert_eq!(page.len(), 10);

        for bad in [0, -1, 101, i32::MAX, i32::MIN] {
            let error = paginate(
                names(1),
                |item| item.clone(),
                Some(bad),
                None,
                PageLimits::ECS,
            )
            .expect_err("out of range");
            let aws = AwsError::from(error);
            assert_eq!(aws.code, "InvalidParameterException");
            assert!(aws.message.contains("maxResults"), "{}", aws.message);
        }
        let error = paginate(
            names(1),
            |item| item.clone(),
            None,
            Some("garbage!"),
            PageLimits::ECS,
        )
        .expect_err("bad token");
        assert_eq!(AwsError::from(error).code, "InvalidParameterException");
    }

    #[test]
    fn items_added_between_pages_are_neither_repeated_nor_skipped() {
        let mut items = names(6);
        let (first, token) = paginate(
            items.clone(),
            |item| item.clone(),
            Some(3),
            None,
            PageLimits::ECS,
        )
        .expect("page");
        // An item sorting before the cursor and one after it appear between the calls.
        items.insert(0, "cluster-000a".to_owned());
        items.push("cluster-999".to_owned());
        items.sort();
        let (second, _) = paginate(
            items.clone(),
            |item| item.clone(),
            Some(10),
            token.as_deref(),
            PageLimits::ECS,
        )
        .expect("page");
        assert!(second.iter().all(|item| !first.contains(item)));
        assert!(second.contains(&"cluster-999".to_owned()));
    }

    #[test]
    fn page_request_for_sql() {
        let request = PageRequest::new(Some(2), None, PageLimits::ECS).expect("valid");
        assert_eq!(request.fetch_limit(), 3);
        let (page, token) = request.finish(vec!["a", "b", "c"], |item| *item);
        assert_eq!(page, vec!["a", "b"]);
        let next = PageRequest::new(Some(2), token.as_deref(), PageLimits::ECS).expect("valid");
        assert_eq!(next.after.as_deref(), Some("b"));
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_panic(token in ".{0,200}") {
            let _ = decode_token(&token);
            let _ = PageRequest::new(Some(5), Some(&token), PageLimits::ECS);
        }

        #[test]
        fn paging_visits_every_item_once(count in 0usize..60, page_size in 1i32..=100) {
            let items = names(count);
            let mut seen = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let (page, next) = paginate(
                    items.clone(),
                    |item| item.clone(),
                    Some(page_size),
                    token.as_deref(),
                    PageLimits::ECS,
                )
                .expect("valid page");
                seen.extend(page);
                match next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(seen, items);
        }
    }
}
