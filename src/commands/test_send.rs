//! `campaign test`: the campaign's message, exactly as it will go out, to a few staff phones.
//!
//! The text is the one the dispatcher would send (personalised with the list's first member,
//! or `--as`), through the route the dispatcher would take (the campaign's gateway, and
//! `[routing]` by each staff number's carrier, from its prefix). Nothing of the campaign
//! changes: no delivery is created, so its state, counts and report stay as they were and the
//! per-number cap never sees these messages. The record is the audit log: a `test_send` entry
//! before anything goes out (who, to which numbers, as which member), and a
//! `test_send_result` entry with each number's outcome (masked number, route, gateway id or
//! error). Receipts for test messages match no delivery: `dlr serve` keeps them and counts
//! them unmatched after `unmatched_after_minutes`.

use std::time::Duration;

use anyhow::{Result, bail};

use super::{Ctx, Exit, find_campaign};
use crate::cli::TestArgs;
use crate::gateway::OutboundSms;
use crate::msisdn::Msisdn;
use crate::store::{Campaign, CampaignState, Store, now_ms};
use crate::template::{Fields, Template, parse_attributes};
use crate::text::for_terminal;

/// A test goes to staff phones, not to a list: more numbers than this is a campaign.
pub const MAX_TEST_NUMBERS: usize = 10;

pub async fn run(ctx: &Ctx, args: TestArgs) -> Result<Exit> {
    let to = staff_numbers(&args.to)?;
    let as_member = args
        .as_member
        .as_deref()
        .map(|raw| parse(raw, "--as"))
        .transpose()?;
    let config = ctx.config()?;
    let store = ctx.store().await?;
    let campaign = find_campaign(&*store, &args.campaign).await?;
    let name = for_terminal(&campaign.name);
    match campaign.state {
        CampaignState::Completed => bail!(
            "campaign {:?} is completed: its message has gone out, and a test send checks a message before it does. To try a new text, create a new campaign",
            campaign.name
        ),
        CampaignState::Cancelled => bail!(
            "campaign {:?} was cancelled: nothing more goes out under it. To try a new text, create a new campaign",
            campaign.name
        ),
        CampaignState::Draft | CampaignState::Running | CampaignState::Paused => {}
    }
    let (member, text) = render(&*store, &campaign, as_member).await?;
    let unicode = crate::dispatch::unicode(&campaign, text.personal.as_deref());
    let text = text.personal.unwrap_or(text.plain);
    let segments = crate::encoding::analyze(&text).segments;
    let routes = super::send::build_routes(
        &config,
        &campaign,
        Duration::from_secs(args.timeout_secs.max(1)),
    )?;
    let subject = format!("campaign {}", campaign.id);
    let masked: Vec<String> = to.iter().map(Msisdn::masked).collect();
    store
        .audit_append(
            &ctx.operator,
            "test_send",
            &subject,
            &serde_json::json!({
                "to": masked,
                "as": member.map(|m| m.masked()),
                "segments": segments,
                "state": campaign.state.as_str(),
            }),
        )
        .await?;
    let started = now_ms();
    let mut results = Vec::new();
    let mut all_ok = true;
    for (i, number) in to.iter().enumerate() {
        let carrier = number.carrier().as_str();
        let route = routes.for_carrier(carrier);
        let gateway = route.gateway.name().to_string();
        // Not a delivery's reference: a receipt for it matches no delivery and is never
        // counted in the campaign (it ends unmatched).
        let reference = format!("smscast-test-{}-{started}-{i}", campaign.id);
        let answer = route
            .gateway
            .submit(&OutboundSms {
                reference: &reference,
                to: number.as_str(),
                from: &campaign.sender,
                text: &text,
                unicode,
            })
            .await;
        let (outcome, gateway_id, error) = match &answer {
            Ok(a) => ("submitted", Some(a.gateway_id.clone()), None),
            Err(e) => {
                all_ok = false;
                let class = match e {
                    crate::gateway::SubmitError::Transient { .. } => "failed (transient)",
                    crate::gateway::SubmitError::Permanent { .. } => "rejected",
                    crate::gateway::SubmitError::NotOurs { .. } => "rejected (not our subscriber)",
                    crate::gateway::SubmitError::InDoubt { .. } => "in doubt",
                    crate::gateway::SubmitError::Unusable { .. } => "failed (gateway unusable)",
                };
                (
                    class,
                    None,
                    Some(crate::report::mask_numbers(&e.to_string())),
                )
            }
        };
        println!(
            "{} ({carrier}) via {gateway}: {outcome}{}",
            number.masked(),
            match (&gateway_id, &error) {
                (Some(id), _) => format!(", gateway id {}", for_terminal(id)),
                (None, Some(e)) => format!(": {}", for_terminal(e)),
                (None, None) => String::new(),
            }
        );
        results.push(serde_json::json!({
            "to": number.masked(),
            "carrier": carrier,
            "gateway": gateway,
            "reference": reference,
            "outcome": outcome,
            "gateway_id": gateway_id,
            "error": error,
        }));
    }
    store
        .audit_append(
            &ctx.operator,
            "test_send_result",
            &subject,
            &serde_json::json!({ "results": results }),
        )
        .await?;
    println!(
        "test of {}: {} SMS part(s) each, personalised as {}; the campaign is unchanged ({}), and the audit log has each outcome (`smscast audit`)",
        name,
        segments,
        member.map_or_else(|| "nobody (no placeholders)".into(), |m| m.masked()),
        campaign.state.as_str(),
    );
    Ok(if all_ok { Exit::Ok } else { Exit::Failed })
}

/// The `--to` numbers, checked and without repeats.
fn staff_numbers(raw: &[String]) -> Result<Vec<Msisdn>> {
    let mut out: Vec<Msisdn> = Vec::new();
    for r in raw.iter().filter(|r| !r.trim().is_empty()) {
        let n = parse(r, "--to")?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        bail!("--to names no number: give the staff phones, e.g. --to 0912345678,0983456789");
    }
    if out.len() > MAX_TEST_NUMBERS {
        bail!(
            "--to names {} numbers: a test goes to at most {MAX_TEST_NUMBERS} staff phones (to reach a list, import it and create a campaign)",
            out.len()
        );
    }
    Ok(out)
}

fn parse(raw: &str, flag: &str) -> Result<Msisdn> {
    match Msisdn::parse(raw) {
        Ok(p) => Ok(p.msisdn),
        Err(e) => bail!(
            "{flag} {:?} is not a Vietnamese mobile number: {}",
            for_terminal(raw.trim()),
            e.explain()
        ),
    }
}

/// The campaign's text as the dispatcher would send it.
struct Text {
    plain: String,
    /// Set when the message has placeholders.
    personal: Option<String>,
}

/// Renders the campaign's text for its list's first member, or for `as_member`; returns the
/// member it was personalised as (none when the text has no placeholders).
async fn render(
    store: &dyn Store,
    campaign: &Campaign,
    as_member: Option<Msisdn>,
) -> Result<(Option<Msisdn>, Text)> {
    let template = Template::parse(&campaign.message_text)?;
    if !template.is_personalised() {
        let plain = template
            .render(
                &Fields {
                    district: None,
                    attributes: None,
                },
                false,
            )
            .unwrap_or_else(|_| campaign.message_text.clone());
        if as_member.is_some() {
            eprintln!("notice: the message has no placeholders: --as changes nothing");
        }
        return Ok((
            None,
            Text {
                plain,
                personal: None,
            },
        ));
    }
    // The list's first member, or the one asked for (paged: lists are millions long).
    let mut after = 0;
    let found = loop {
        let page = store
            .list_members_page(&campaign.list, after, 5_000)
            .await?;
        let Some(last) = page.last() else { break None };
        after = last.subscriber_id;
        let hit = match as_member {
            None => page.into_iter().next(),
            Some(m) => page.into_iter().find(|f| f.msisdn == m.as_str()),
        };
        if hit.is_some() {
            break hit;
        }
    };
    let Some(member) = found else {
        match as_member {
            Some(m) => bail!(
                "--as {}: that number is not in list {:?}; give a member of the campaign's list",
                m.masked(),
                campaign.list
            ),
            None => bail!(
                "list {:?} has no members: there is nobody to personalise the message as",
                campaign.list
            ),
        }
    };
    let who = Msisdn::from_canonical(&member.msisdn);
    let attrs = parse_attributes(member.attributes.as_deref());
    let fields = Fields {
        district: member.district.as_deref(),
        attributes: attrs.as_ref(),
    };
    match template.render(&fields, campaign.encoding == "GSM-7") {
        Ok(text) => Ok((
            who,
            Text {
                plain: campaign.message_text.clone(),
                personal: Some(text),
            },
        )),
        Err(missing) => bail!(
            "member {} has no value for the placeholder {{{missing}}}: the real send rejects that member. Give another one with --as NUMBER",
            who.map_or_else(|| "?".into(), |m| m.masked())
        ),
    }
}
