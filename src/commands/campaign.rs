//! `campaign create|list|show|pause|resume|cancel` and `reconcile`.

use anyhow::{Result, bail};

use super::{Ctx, Exit, find_campaign, print_json};
use crate::cli::{CampaignCmd, CreateArgs, ReconcileArgs};
use crate::encoding::{self, check_brandname};
use crate::message::MessageFile;
use crate::store::{CampaignMove, CampaignState, NewCampaign};
use crate::template::{self, Fields, Template};
use crate::text::for_terminal;
use crate::window::{Hours, parse_date};

pub async fn run(ctx: &Ctx, cmd: CampaignCmd) -> Result<Exit> {
    match cmd {
        CampaignCmd::Create(args) => create(ctx, *args).await,
        CampaignCmd::List { json } => list(ctx, json).await,
        CampaignCmd::Show { campaign, json } => show(ctx, &campaign, json).await,
        CampaignCmd::Pause { campaign } => transition(ctx, &campaign, CampaignState::Paused).await,
        CampaignCmd::Resume { campaign } => {
            transition(ctx, &campaign, CampaignState::Running).await
        }
        CampaignCmd::Cancel { campaign } => {
            transition(ctx, &campaign, CampaignState::Cancelled).await
        }
        CampaignCmd::Export(args) => super::carrier::export(ctx, args).await,
        CampaignCmd::Test(args) => super::test_send::run(ctx, args).await,
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<Exit> {
    let config = ctx.config()?;
    let message = MessageFile::load(&args.message)?;
    let analysis = message.prepare(args.no_diacritics);
    if !analysis.offending.is_empty() && args.no_diacritics {
        let chars: Vec<String> = analysis
            .offending
            .iter()
            .map(|o| format!("{:?} at {} ({})", o.character, o.position, o.name))
            .collect();
        bail!(
            "--no-diacritics asked for GSM-7, but these characters are not GSM-7: {}. Edit the message (see `smscast message check {} --no-diacritics`)",
            chars.join(", "),
            args.message.display()
        );
    }
    let gateway = match args.gateway {
        Some(g) => {
            if !config.gateways.contains_key(&g) {
                bail!("gateway {g:?} is not configured in smscast.toml");
            }
            g
        }
        None => config.default_gateway()?,
    };
    // The sender: --sender, else the message file's, else the gateway's `from` (a plain-text
    // message file has no sender of its own).
    let gateway_from = config.gateways.get(&gateway).and_then(|g| g.from());
    let Some(sender) = args
        .sender
        .clone()
        .or_else(|| message.sender.clone())
        .or_else(|| gateway_from.map(str::to_string))
    else {
        bail!(
            "no sender id: give --sender BRANDNAME, set sender in the message file, or from in the gateway's section of smscast.toml"
        );
    };
    check_brandname(&sender).map_err(|e| anyhow::anyhow!("sender {sender:?}: {e}"))?;
    // Each carrier's gateway sends at its own rate, all at once: the campaign may go at their sum.
    let routes_rate = super::send::routes_rate(&config, &gateway);
    let rate = args
        .rate
        .or(routes_rate.as_ref().map(|(sum, _)| *sum))
        .unwrap_or(config.defaults.rate);
    if !(rate > 0.0 && rate.is_finite()) {
        bail!("--rate must be a positive number of messages per second");
    }
    match &routes_rate {
        Some((g, _)) if rate > *g && config.routed_gateways(&gateway).len() == 1 => {
            bail!("--rate {rate} is above what gateway {gateway:?} allows ({g}/s)")
        }
        Some((g, each)) if rate > *g => bail!(
            "--rate {rate} is above what the campaign's gateways allow together ({each} = {g}/s): give --rate {g} or less"
        ),
        _ => {}
    }
    let default_hours = Hours::parse(&config.defaults.hours)?;
    let hours = match &args.hours {
        Some(h) => Hours::parse(h)?,
        None => default_hours,
    };
    let starts = args
        .from
        .as_deref()
        .map(|d| parse_date(d, false))
        .transpose()?;
    let ends = args
        .until
        .as_deref()
        .map(|d| parse_date(d, true))
        .transpose()?;
    if let (Some(s), Some(e)) = (starts, ends)
        && e <= s
    {
        bail!("--until must be after --from");
    }
    if let (Some(e), Some(written)) = (ends, args.until.as_deref())
        && e <= chrono::Utc::now()
    {
        bail!(
            "--until {written} is in the past (send-by {}): nothing could be sent. Give the last day the message may go out, today or later (Vietnam time)",
            send_by(e.timestamp_millis())
        );
    }
    let store = ctx.store().await?;
    let Some(size) = store.list_size(&args.list).await? else {
        bail!(
            "there is no list named {:?}: import one with `smscast subscribers import FILE --list {}`",
            args.list,
            args.list
        );
    };
    // The text is a template: `{name}` placeholders are filled per recipient.
    let template = Template::parse(&analysis.text)?;
    let sent = if template.is_personalised() {
        let check = template::check_list(&*store, &args.list, &template, analysis.folded).await?;
        if !check.missing.is_empty() {
            let what: Vec<String> = check
                .missing
                .iter()
                .map(|(name, n, example)| {
                    format!("{n} have no value for {{{name}}} (e.g. {example})")
                })
                .collect();
            bail!(
                "of the {} recipients in list {:?}, {}: fill the column in the file and import it again, or remove the placeholder",
                check.recipients,
                args.list,
                what.join("; ")
            );
        }
        let Some(worst) = check.worst else {
            bail!("list {:?} has no members", args.list);
        };
        println!(
            "personalised: {} recipients, up to {} segment(s) each ({} need UCS-2)",
            check.recipients, worst.segments, check.ucs2
        );
        worst
    } else {
        encoding::analyze(
            &template
                .render(
                    &Fields {
                        district: None,
                        attributes: None,
                    },
                    false,
                )
                .expect("no placeholders"),
        )
    };
    let new = NewCampaign {
        name: args.name.clone(),
        list: args.list.clone(),
        message_text: analysis.text.clone(),
        encoding: sent.encoding.as_str().to_string(),
        segments: sent.segments as i64,
        characters: sent.characters as i64,
        sender,
        gateway,
        rate,
        window_start: hours.start,
        window_end: hours.end,
        starts_ms: starts.map(|t| t.timestamp_millis()),
        ends_ms: ends.map(|t| t.timestamp_millis()),
        max_attempts: args
            .max_attempts
            .unwrap_or(config.defaults.max_attempts)
            .max(1),
        cap_hours: args.cap_hours.max(0),
        created_by: ctx.operator.clone(),
    };
    let id = store.create_campaign(&new).await?;
    store
        .audit_append(
            &ctx.operator,
            "create",
            &format!("campaign {id}"),
            &serde_json::to_value(&new)?,
        )
        .await?;
    if new.cap_hours != 24 {
        store
            .audit_append(
                &ctx.operator,
                "override_cap",
                &format!("campaign {id}"),
                &serde_json::json!({ "default_hours": 24, "chosen_hours": new.cap_hours }),
            )
            .await?;
    }
    if hours != default_hours {
        // Widening the window is an explicit act on the record.
        store
            .audit_append(
                &ctx.operator,
                "override_hours",
                &format!("campaign {id}"),
                &serde_json::json!({ "default": default_hours.to_string(), "chosen": hours.to_string() }),
            )
            .await?;
    }
    println!(
        "campaign {id} {:?} created (draft): list {:?} ({size} subscribers), {} × {} segment(s) = {} SMS at most, {}/s, hours {hours} Vietnam time",
        new.name,
        new.list,
        new.encoding,
        new.segments,
        size * new.segments,
        rate
    );
    let gw = super::send::route_limits(
        &config,
        &new.gateway,
        crate::dispatch::parts_of(new.segments),
    );
    println!(
        "{}",
        super::send::pace_summary(
            rate,
            gw.0,
            gw.1,
            new.segments,
            template.is_personalised(),
            size
        )
    );
    if config.routed_gateways(&new.gateway).len() > 1 {
        let by_carrier = store
            .lists()
            .await?
            .into_iter()
            .find(|l| l.name == new.list)
            .map(|l| l.by_carrier)
            .unwrap_or_default();
        println!(
            "{}",
            by_gateway(&config, &new.gateway, &by_carrier, new.segments)
        );
    }
    ucs2_notice(&sent, &args.message);
    night_notice(hours);
    println!("next: smscast send {}", for_terminal(&new.name));
    Ok(Exit::Ok)
}

/// What each routed gateway takes of the list, and how long at its own rate: the slowest
/// sets the campaign's pace, whatever the gateways allow together.
fn by_gateway(
    config: &crate::config::Config,
    gateway: &str,
    by_carrier: &[(String, i64)],
    segments: i64,
) -> String {
    let parts = crate::dispatch::parts_of(segments);
    let each: Vec<String> = config
        .routed_gateways(gateway)
        .into_iter()
        .map(|g| {
            let n: i64 = by_carrier
                .iter()
                .filter(|(c, _)| config.routing.get(c).map_or(gateway, String::as_str) == g)
                .map(|(_, n)| n)
                .sum();
            let c = config.gateways.get(g);
            match crate::dispatch::message_rate(
                None,
                c.and_then(|c| c.rate()),
                c.and_then(|c| c.sms_per_second()),
                parts,
            ) {
                Some(r) => format!(
                    "{g} {n} at {}/s ({})",
                    super::send::figure(r),
                    super::send::about(n as f64 / r)
                ),
                None => format!("{g} {n}"),
            }
        })
        .collect();
    format!(
        "by gateway, each at its own rate, all at once: {}; the slowest sets the pace",
        each.join(", ")
    )
}

/// Decree 91/2020/NĐ-CP allows advertising SMS only 07:00–22:00: say so when the window
/// reaches outside (an awareness message is arguably not advertising, so it is not refused).
fn night_notice(hours: Hours) {
    const OPENS: i64 = 7 * 60;
    const CLOSES: i64 = 22 * 60;
    if hours.start < OPENS || hours.end > CLOSES {
        eprintln!(
            "notice: the hours {hours} reach into 22:00-07:00, when Decree 91/2020/NĐ-CP forbids advertising SMS. A public-awareness message is arguably not advertising, but people are asleep: the default is 07:00-21:00. The chosen hours are written to the audit log."
        );
    }
}

/// Characters other than Vietnamese letters (emoji, smart quotes, controls) that make the
/// message UCS-2 cost more than they look: name them and what they cost.
fn ucs2_notice(sent: &encoding::Analysis, file: &std::path::Path) {
    let others: Vec<&encoding::Offending> = sent
        .offending
        .iter()
        .filter(|o| !o.name.contains("letter with diacritics"))
        .collect();
    if others.is_empty() {
        return;
    }
    let without: String = sent
        .text
        .chars()
        .enumerate()
        .map(|(i, c)| match others.iter().find(|o| o.position == i + 1) {
            Some(o) => o.suggestion.clone().unwrap_or_default(),
            None => c.to_string(),
        })
        .collect();
    let alt = encoding::analyze(&without);
    let named: Vec<String> = others
        .iter()
        .take(5)
        .map(|o| {
            format!(
                "{} at {} ({})",
                crate::text::for_terminal(&o.character.to_string()),
                o.position,
                o.name
            )
        })
        .collect();
    let ratio = sent.segments as f64 / alt.segments.max(1) as f64;
    eprintln!(
        "notice: {}{} make the message UCS-2: {} segment(s) per recipient; without them {}, {} segment(s) (cost ×{}). `smscast message check {}` shows them and their replacements.",
        named.join(", "),
        if others.len() > 5 { ", …" } else { "" },
        sent.segments,
        alt.encoding,
        alt.segments,
        format!("{ratio:.1}").trim_end_matches(".0"),
        file.display()
    );
}

/// A send-by instant for people: the end of a day reads `YYYY-MM-DD 24:00`, as written.
fn send_by(ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let local = at.with_timezone(&crate::window::vietnam());
    if local.format("%H:%M:%S%.f").to_string() == "00:00:00" {
        let day = local.date_naive() - chrono::Duration::days(1);
        format!("{day} 24:00 +07:00")
    } else {
        crate::window::local(at)
    }
}

async fn list(ctx: &Ctx, json: bool) -> Result<Exit> {
    let store = ctx.store_read_only().await?;
    let campaigns = store.campaigns().await?;
    if json {
        print_json(&campaigns)?;
        return Ok(Exit::Ok);
    }
    if campaigns.is_empty() {
        println!("no campaigns yet: smscast campaign create NAME --list L --message FILE");
    }
    for c in campaigns {
        println!(
            "{:>4}  {:<24} {:<10} list {:<16} {} × {} seg, {}/s via {}",
            c.id,
            for_terminal(&c.name),
            c.state.as_str(),
            for_terminal(&c.list),
            c.encoding,
            c.segments,
            c.rate,
            c.gateway
        );
    }
    Ok(Exit::Ok)
}

async fn show(ctx: &Ctx, key: &str, json: bool) -> Result<Exit> {
    let store = ctx.store_read_only().await?;
    let c = find_campaign(&*store, key).await?;
    let counts = store.state_counts(c.id).await?;
    let workers = store.workers(c.id).await?;
    let (held, held_until) = store.held_by_cap(c.id).await?;
    if json {
        let until = held_until
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(crate::window::local);
        print_json(&serde_json::json!({
            "campaign": c,
            "states": counts.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "held_by_cap": { "numbers": held, "until": until },
            "workers": workers,
        }))?;
        return Ok(Exit::Ok);
    }
    println!("campaign {} {:?}: {}", c.id, c.name, c.state.as_str());
    if let Some(r) = &c.state_reason {
        println!("  reason:   {}", for_terminal(r));
    }
    println!("  list:     {}", for_terminal(&c.list));
    println!(
        "  gateway:  {} at {}/s, max {} attempts",
        for_terminal(&c.gateway),
        c.rate,
        c.max_attempts
    );
    println!(
        "  hours:    {} (Asia/Ho_Chi_Minh)",
        Hours {
            start: c.window_start,
            end: c.window_end
        }
    );
    if let Some(ms) = c.starts_ms {
        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        println!("  not before: {}", crate::window::local(at));
    }
    if let Some(ms) = c.ends_ms {
        let passed = ms <= chrono::Utc::now().timestamp_millis();
        println!(
            "  send by:    {}{}",
            send_by(ms),
            if passed {
                " (passed: nothing more goes out)"
            } else {
                ""
            }
        );
    }
    if c.starts_ms.is_none() && c.ends_ms.is_none() {
        println!("  dates:      any day (no --from/--until)");
    }
    println!(
        "  message:  {} , {} characters, {} segment(s), sender {}",
        c.encoding,
        c.characters,
        c.segments,
        for_terminal(&c.sender)
    );
    println!("            {}", for_terminal(&c.message_text));
    if let Some(line) = held_line(held, held_until, c.cap_hours) {
        println!("  held:       {held} {line}");
    }
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    println!("  deliveries: {total}");
    for (s, n) in &counts {
        println!("    {s:<11}{n:>10}");
    }
    if !workers.is_empty() {
        println!("  workers:");
        for w in workers {
            let hb = chrono::DateTime::from_timestamp_millis(w.heartbeat_ms).unwrap_or_default();
            println!(
                "    {} pid {} — sent {}, last heartbeat {}{}",
                for_terminal(&w.id),
                w.pid,
                w.sent,
                crate::window::local(hb),
                if w.stopped_ms.is_some() {
                    " (stopped)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(Exit::Ok)
}

/// "by the per-number cap (24 h) until …", when the cap holds any message back: those
/// numbers had another campaign's message within the cap, and wait (queued, not lost).
pub(super) fn held_line(held: i64, until_ms: Option<i64>, cap_hours: i64) -> Option<String> {
    (held > 0).then(|| {
        let until = until_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(crate::window::local)
            .unwrap_or_default();
        format!("by the per-number cap ({cap_hours} h) until {until}")
    })
}

async fn transition(ctx: &Ctx, key: &str, to: CampaignState) -> Result<Exit> {
    let store = ctx.store().await?;
    let c = find_campaign(&*store, key).await?;
    let m = match to {
        CampaignState::Paused => CampaignMove::Pause,
        CampaignState::Running => CampaignMove::Resume,
        _ => CampaignMove::Cancel,
    };
    let reason = (m == CampaignMove::Pause).then(|| format!("paused by {}", ctx.operator));
    // The store checks the move against the transition table in the same statement that
    // makes it: a state changed by another terminal since `c` was read is never overwritten.
    store
        .move_campaign(c.id, m, reason.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("campaign {:?}: {e}", c.name))?;
    store
        .audit_append(
            &ctx.operator,
            m.verb(),
            &format!("campaign {}", c.id),
            &serde_json::json!({ "from": c.state.as_str() }),
        )
        .await?;
    match m {
        CampaignMove::Pause => println!(
            "campaign {:?} paused; a running `send` stops within seconds. Resume with `smscast campaign resume {}`",
            c.name, c.name
        ),
        CampaignMove::Resume => println!(
            "campaign {:?} may send again: run `smscast send {}`",
            c.name, c.name
        ),
        _ => println!("campaign {:?} cancelled: nothing more goes out", c.name),
    }
    Ok(Exit::Ok)
}

pub async fn reconcile(ctx: &Ctx, args: ReconcileArgs) -> Result<Exit> {
    if !args.resend && !args.give_up {
        let store = ctx.store_read_only().await?;
        let c = find_campaign(&*store, &args.campaign).await?;
        let in_doubt: i64 = store
            .state_counts(c.id)
            .await?
            .iter()
            .filter(|(s, _)| s == "unknown")
            .map(|(_, n)| n)
            .sum();
        eprintln!(
            "error: choose --resend or --give-up ({in_doubt} in doubt): --resend sends them again (some people may get two), --give-up counts them as failed\n\nUsage: smscast reconcile {} --resend|--give-up",
            crate::text::for_terminal(&c.name)
        );
        return Ok(Exit::Usage);
    }
    let store = ctx.store().await?;
    let c = find_campaign(&*store, &args.campaign).await?;
    let n = store.reconcile(c.id, args.resend).await?;
    store
        .audit_append(
            &ctx.operator,
            if args.resend {
                "reconcile_resend"
            } else {
                "reconcile_give_up"
            },
            &format!("campaign {}", c.id),
            &serde_json::json!({ "deliveries": n }),
        )
        .await?;
    if n == 0 {
        println!("campaign {:?} has no messages in doubt", c.name);
    } else if args.resend {
        println!(
            "{n} message(s) in doubt queued again; run `smscast send {}`. Some of these people may receive the message twice: the report counts them as possible duplicates.",
            c.name
        );
    } else {
        println!("{n} message(s) in doubt counted as failed; nothing more is sent to them");
    }
    Ok(Exit::Ok)
}
