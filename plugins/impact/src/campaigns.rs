//! The campaigns an account can see (`GET /Advertisers/{sid}/Campaigns`),
//! which `check` reads to confirm every configured campaign id.
//!
//! The list is paged like every Impact list endpoint, and read the way the
//! `/Actions` streams read theirs (module [`crate::actions`]): the same
//! string-valued `@`-envelope, read with the rows by
//! [`action::ListPage`] and checked by [`Envelope::read`] (no next page
//! once `@nextpageuri` is empty or `@page` reaches `@numpages`; a page
//! whose rows differ from its counts is refused), the relative
//! `@nextpageuri` asked for through [`relative_request`]. Rows sit under
//! `Campaigns`. QA30 L1: only the first page was read, so a campaign listed
//! on page 2 was reported "not visible to account". No `PageSize` is sent:
//! the reference gives `PageSize` limits for `/Actions` only, so Impact's
//! default page applies.
//!
//! Paging stops as soon as every configured campaign has been seen. A
//! `@nextpageuri` naming a page already asked for (a cursor that does not
//! advance, or goes round) ends the check with an error instead of asking
//! again: a check commits nothing, and the host's guard against repeated
//! requests only counts requests asked again after a commit.
//!
//! What it is not: a stream; campaigns are not stored.

use crate::action::{self, Envelope, ListPage, ListRow};
use crate::client::Client;
use crate::config::Settings;
use crate::relative_request;
use plugin_api::lenient::Scalar;
use plugin_api::{Cx, PluginError};
use serde::Deserialize;
use std::collections::HashSet;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CampaignRow<'a> {
    #[serde(rename = "Id", borrow)]
    id: Scalar<'a>,
}

impl<'de> ListRow<'de> for CampaignRow<'de> {
    const KEY: &'static str = "Campaigns";
}

/// Parses one `/Campaigns` page: its envelope and the ids it lists (a row
/// without an `Id` is passed over; one with an `Id` that is no id, such as
/// `4242.5`, is an error). A body without the `Campaigns` array
/// (an error object sent with HTTP 200) is an error, not an empty page, and
/// so is a page whose rows differ from its envelope's counts (rows are
/// counted whether or not they have an `Id`).
pub fn parse_campaigns_page(body: &[u8]) -> Result<(Envelope, Vec<String>), String> {
    let p: ListPage<'_, CampaignRow<'_>> =
        plugin_api::serde_json::from_slice(body).map_err(|e| {
            match plugin_api::serde_json::from_slice::<plugin_api::serde_json::Value>(body) {
                Ok(_) => format!("unexpected page shape: {e}"),
                Err(_) => plugin_api::sdk::malformed_json(body, &e),
            }
        })?;
    let Some(rows) = p.rows else {
        return Err(format!(
            "the answer has no `Campaigns` array (not a page of campaigns){}",
            action::answered(body)
        ));
    };
    let env = Envelope::read(&p.envelope, rows.len())?;
    // Ids as `Scalar::id` reads them, so a campaign sent as `4242.0` is
    // still campaign 4242 (QA35d M3).
    let mut ids = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if let Some(id) =
            r.id.id("Id")
                .map_err(|e| format!("record {}: {e}", i + 1))?
        {
            ids.push(id);
        }
    }
    Ok((env, ids))
}

/// The configured campaigns (`settings.campaign_ids`, in their order) that
/// the account's campaign list does not hold, reading its pages until each
/// has been seen or the list ends.
pub async fn not_listed(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
) -> Result<Vec<u64>, PluginError> {
    let mut missing = settings.campaign_ids.clone();
    let mut uri = format!("/Advertisers/{}/Campaigns", settings.account_sid);
    let mut asked = HashSet::new();
    let mut page_no = 1u64;
    loop {
        asked.insert(uri.clone());
        let what = format!("check: campaigns page {page_no}");
        let req =
            relative_request(cx, settings, &uri).label(format!("check campaigns page {page_no}"));
        let resp = client.send(req, &what).await?;
        let (env, listed) = parse_campaigns_page(&resp.body)
            .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
        missing.retain(|id| !listed.contains(&id.to_string()));
        if env.page > 0 {
            page_no = env.page;
        }
        let Some(next) = env.next else {
            return Ok(missing);
        };
        if missing.is_empty() {
            return Ok(missing);
        }
        if asked.contains(&next) {
            let ids: Vec<String> = missing.iter().map(u64::to_string).collect();
            let noun = if ids.len() == 1 {
                "campaign"
            } else {
                "campaigns"
            };
            return Err(PluginError::bad_response(format!(
                "{what}: its @nextpageuri {next:?} names a page already read (Impact's paging \
                 does not advance), so the check stops with {noun} {} not seen in the {} \
                 pages read",
                ids.join(", "),
                asked.len()
            )));
        }
        uri = next;
        page_no += 1;
    }
}
