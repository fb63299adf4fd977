//! `nextToken` / `maxResults`, as berth-aws-protocol validates them, for read-model
//! queries.

use berth_aws_protocol::AwsError;
use berth_aws_protocol::pagination::{PageLimits, PageRequest};

use crate::error::ApiResult;

/// Validates the paging members of an ECS list request (`maxResults` 1..=100).
pub fn page_request(
    next_token: Option<&str>,
    max_results: Option<i32>,
    default_limit: u32,
) -> ApiResult<PageRequest> {
    PageRequest::new(max_results, next_token, PageLimits::new(default_limit, 100))
        .map_err(|error| AwsError::from(error).into())
}
