//! The official report: a Word document in the layout of Decree 30/2020/NĐ-CP (administrative
//! documents), for the chain of command. It is a draft the office edits and signs: the number
//! and the date are left blank, the assessment section is a bracketed placeholder.
//!
//! Every figure comes from the [`Report`] the JSON form prints; nothing is computed here except
//! sums of its own rows (the "not delivered" total is failed + expired + rejected). No
//! technical jargon (percentiles, HTTP statuses) goes into the document.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use docx_rs::{
    AlignmentType, BorderType, Docx, Header, LineSpacing, PageMargin, PageNum, Paragraph,
    ParagraphBorder, ParagraphBorderPosition, ParagraphBorders, Run, RunFonts, SpecialIndentType,
    Table, TableCell, TableCellMargins, TableRow, VAlignType, WidthType,
};

use super::labels::{Lang, carrier_name, plain_words};
use super::{Report, district_name, reason_summary};
use crate::config::ReportConfig;
use crate::store::state;

const FONT: &str = "Times New Roman";
/// A4 in twentieths of a point.
const PAGE_W: u32 = 11_906;
const PAGE_H: u32 = 16_838;
/// Decree 30/2020, Appendix I: top 20–25 mm, bottom 20–25 mm, left 30–35 mm, right 15–20 mm.
const MARGIN_TOP: i32 = 1_134; // 20 mm
const MARGIN_BOTTOM: i32 = 1_134; // 20 mm
const MARGIN_LEFT: i32 = 1_701; // 30 mm
const MARGIN_RIGHT: i32 = 851; // 15 mm
/// The text width: 165 mm.
const TEXT_W: usize = (PAGE_W as i32 - MARGIN_LEFT - MARGIN_RIGHT) as usize;
/// Header columns: agency (left), national motto (right), without cell margins, so that
/// "SỞ THÔNG TIN VÀ TRUYỀN THÔNG" and "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" each fit on one line
/// at 12 pt.
const LEFT_W: usize = 4_300;
const RIGHT_W: usize = TEXT_W - LEFT_W;

/// Half-points.
const PT11: usize = 22;
const PT12: usize = 24;
const PT13: usize = 26;
const PT14: usize = 28;

/// The document's fixed words, in one language.
struct Words {
    motto1: &'static str,
    motto2: &'static str,
    number: &'static str,
    date: fn(&str) -> String,
    kind: &'static str,
    subject: &'static str,
    subject_all: &'static str,
    under: &'static str,
    intro: &'static str,
    part_results: &'static str,
    sec_what: &'static str,
    sec_result: &'static str,
    sec_carrier: &'static str,
    sec_district: &'static str,
    sec_reasons: &'static str,
    sec_cost: &'static str,
    part_assessment: &'static str,
    assessment_placeholder: &'static str,
    closing: &'static str,
    recipients_head: &'static str,
    annex: &'static str,
    annex_broken: &'static str,
    generated: &'static str,
    no: &'static str,
    subscribers: &'static str,
    share: &'static str,
    total: &'static str,
    reason: &'static str,
    gateway_words: &'static str,
    parts: &'static str,
    price: &'static str,
    amount: &'static str,
    table: &'static str,
    filter: &'static str,
}

const VI: Words = Words {
    motto1: "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    motto2: "Độc lập - Tự do - Hạnh phúc",
    number: "Số:",
    date: |place| format!("{place}, ngày … tháng … năm 20…"),
    kind: "BÁO CÁO",
    subject: "Kết quả gửi tin nhắn tuyên truyền",
    subject_all: "Kết quả gửi tin nhắn tuyên truyền của các chiến dịch",
    under: "theo",
    intro: "gửi tin nhắn tuyên truyền đến thuê bao di động như sau:",
    part_results: "I. KẾT QUẢ THỰC HIỆN",
    sec_what: "1. Nội dung, thời gian và đối tượng nhận tin",
    sec_result: "2. Kết quả gửi tin",
    sec_carrier: "3. Kết quả theo nhà mạng",
    sec_district: "4. Kết quả theo huyện, thị xã, thành phố",
    sec_reasons: "5. Tin nhắn không thành công và nguyên nhân",
    sec_cost: "6. Kinh phí",
    part_assessment: "II. ĐÁNH GIÁ, ĐỀ XUẤT",
    assessment_placeholder: "[Đơn vị bổ sung nhận xét, đánh giá và đề xuất trước khi ký ban hành.]",
    closing: "Trên đây là báo cáo kết quả gửi tin nhắn tuyên truyền./.",
    recipients_head: "Nơi nhận:",
    annex: "Mã kiểm tra nhật ký của hệ thống gửi tin (để đối chiếu số liệu)",
    annex_broken: "Nhật ký của hệ thống gửi tin không còn nguyên vẹn: số liệu cần được kiểm tra lại trước khi ký",
    generated: "Số liệu lập lúc",
    no: "STT",
    subscribers: "Số thuê bao",
    share: "Tỷ lệ (%)",
    total: "Tổng cộng",
    reason: "Nguyên nhân",
    gateway_words: "Nguyên văn phản hồi",
    parts: "Số tin nhắn tính phí",
    price: "Đơn giá",
    amount: "Thành tiền",
    table: "Bảng",
    filter: "Số liệu chỉ gồm",
};

const EN: Words = Words {
    motto1: "SOCIALIST REPUBLIC OF VIET NAM",
    motto2: "Independence - Freedom - Happiness",
    number: "No.:",
    date: |place| format!("{place}, …/…/20…"),
    kind: "REPORT",
    subject: "Results of the awareness text messages",
    subject_all: "Results of the awareness text message campaigns",
    under: "under",
    intro: "of sending awareness text messages to mobile subscribers are as follows:",
    part_results: "I. RESULTS",
    sec_what: "1. Message, period and recipients",
    sec_result: "2. Results",
    sec_carrier: "3. Results by carrier",
    sec_district: "4. Results by district, town and city",
    sec_reasons: "5. Messages not delivered and why",
    sec_cost: "6. Cost",
    part_assessment: "II. ASSESSMENT AND PROPOSALS",
    assessment_placeholder: "[To be completed by the office before signing.]",
    closing: "This concludes the report on the awareness text messages./.",
    recipients_head: "Recipients:",
    annex: "Check code of the sending system's log (to verify the figures)",
    annex_broken: "The sending system's log is not intact: the figures must be checked again before signing",
    generated: "Figures as of",
    no: "No.",
    subscribers: "Subscribers",
    share: "Share (%)",
    total: "Total",
    reason: "Reason",
    gateway_words: "The gateway's own words",
    parts: "Billed SMS parts",
    price: "Price per part",
    amount: "Amount",
    table: "Table",
    filter: "The figures cover only",
};

/// The state groups of the carrier and district tables, in order.
const GROUPS: [(&str, &[&str]); 6] = [
    ("delivered", &[state::DELIVERED]),
    ("awaiting", &[state::SUBMITTED, state::HANDED]),
    (
        "not_delivered",
        &[state::FAILED, state::EXPIRED, state::REJECTED],
    ),
    ("unknown", &[state::UNKNOWN]),
    ("suppressed", &[state::SUPPRESSED]),
    ("pending", &["queued", "claimed", "sending"]),
];

fn group_name(key: &str, lang: Lang) -> &'static str {
    match (key, lang) {
        ("delivered", Lang::Vi) => "Đã đến máy",
        ("awaiting", Lang::Vi) => "Đã gửi, chờ xác nhận",
        ("not_delivered", Lang::Vi) => "Không thành công",
        ("unknown", Lang::Vi) => "Chưa rõ kết quả",
        ("suppressed", Lang::Vi) => "Từ chối nhận tin",
        ("pending", Lang::Vi) => "Chưa gửi",
        ("delivered", _) => "Delivered",
        ("awaiting", _) => "Sent, awaiting confirmation",
        ("not_delivered", _) => "Not delivered",
        ("unknown", _) => "Outcome unknown",
        ("suppressed", _) => "Opted out",
        _ => "Not sent yet",
    }
}

/// A count for people: `1.234.567` in Vietnamese, `1,234,567` in English.
pub fn number(n: i64, lang: Lang) -> String {
    let sep = if lang == Lang::Vi { '.' } else { ',' };
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A share in percent with one decimal: `47,5` in Vietnamese.
pub fn percent(n: i64, total: i64, lang: Lang) -> String {
    let p = super::pct(n, total);
    let s = format!("{p:.1}");
    if lang == Lang::Vi {
        s.replace('.', ",")
    } else {
        s
    }
}

/// Money: whole amounts grouped, else two decimals.
pub fn amount(x: f64, lang: Lang) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        number(x as i64, lang)
    } else {
        let whole = number(x.trunc() as i64, lang);
        let cents = format!("{:02}", ((x.fract().abs()) * 100.0).round() as i64);
        let dec = if lang == Lang::Vi { ',' } else { '.' };
        format!("{whole}{dec}{cents}")
    }
}

/// `2022-06-26 08:00 +07:00` → `08 giờ 00 ngày 26/6/2022` (the report's times are Vietnam
/// time already).
fn when(at: &str, lang: Lang) -> String {
    match chrono::DateTime::parse_from_str(at, "%Y-%m-%d %H:%M %:z") {
        Ok(t) => match lang {
            Lang::Vi => format!(
                "{} giờ {} ngày {}",
                t.format("%H"),
                t.format("%M"),
                t.format("%-d/%-m/%Y")
            ),
            Lang::En => t.format("%H:%M on %-d %B %Y").to_string(),
        },
        Err(_) => at.to_string(),
    }
}

/// A quoted text as a sentence: it ends with its own full stop (or "!", "?"), inside the quotes.
fn sentence(text: &str) -> String {
    let t = text.trim();
    if t.ends_with(['.', '!', '?', '…']) {
        t.to_string()
    } else {
        format!("{t}.")
    }
}

fn run(text: impl Into<String>, size: usize) -> Run {
    Run::new().add_text(text).size(size)
}

fn para(align: AlignmentType) -> Paragraph {
    Paragraph::new()
        .align(align)
        .line_spacing(LineSpacing::new().before(0).after(0))
}

/// A body paragraph: justified, first line indented 1 cm, 6 pt after.
fn body(text: impl Into<String>) -> Paragraph {
    Paragraph::new()
        .align(AlignmentType::Both)
        .indent(None, Some(SpecialIndentType::FirstLine(567)), None, None)
        .line_spacing(LineSpacing::new().before(0).after(120).line(288))
        .add_run(run(text, PT14))
}

fn heading(text: &str) -> Paragraph {
    Paragraph::new()
        .align(AlignmentType::Both)
        .indent(None, Some(SpecialIndentType::FirstLine(567)), None, None)
        .line_spacing(LineSpacing::new().before(120).after(120))
        .keep_next(true)
        .add_run(run(text, PT14).bold())
}

/// A short horizontal rule under a centred line, `len` twips long inside a `width` column.
fn rule(width: usize, len: usize) -> Paragraph {
    let side = (width.saturating_sub(len) / 2) as i32;
    let mut p = para(AlignmentType::Center)
        .indent(Some(side), None, Some(side), None)
        .add_run(run("", 4));
    p.property = p.property.set_borders(
        ParagraphBorders::with_empty().set(
            ParagraphBorder::new(ParagraphBorderPosition::Top)
                .val(BorderType::Single)
                .size(6)
                .space(0),
        ),
    );
    p
}

fn cell(width: usize, paragraphs: Vec<Paragraph>) -> TableCell {
    paragraphs
        .into_iter()
        .fold(TableCell::new().width(width, WidthType::Dxa), |c, p| {
            c.add_paragraph(p)
        })
}

/// A table of figures: a bold header row, numbers on the right, 13 pt.
fn figures(head: &[&str], widths: &[usize], rows: Vec<Vec<String>>, total: bool) -> Table {
    let numeric = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
    };
    let mut out = vec![TableRow::new(
        head.iter()
            .zip(widths)
            .map(|(h, w)| {
                cell(
                    *w,
                    vec![para(AlignmentType::Center).add_run(run(*h, PT13).bold())],
                )
                .vertical_align(VAlignType::Center)
            })
            .collect(),
    )];
    let last = rows.len().saturating_sub(1);
    for (r, row) in rows.into_iter().enumerate() {
        let bold = total && r == last;
        out.push(TableRow::new(
            row.into_iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (v, w))| {
                    let align = if i == 0 {
                        AlignmentType::Center
                    } else if numeric(&v) {
                        AlignmentType::Right
                    } else {
                        AlignmentType::Left
                    };
                    let mut t = run(v, PT13);
                    if bold {
                        t = t.bold();
                    }
                    cell(*w, vec![para(align).add_run(t)])
                })
                .collect(),
        ));
    }
    Table::new(out)
        .set_grid(widths.to_vec())
        .width(widths.iter().sum(), WidthType::Dxa)
}

fn caption(text: String) -> Paragraph {
    Paragraph::new()
        .align(AlignmentType::Center)
        .line_spacing(LineSpacing::new().before(60).after(60))
        .keep_next(true)
        .add_run(run(text, PT13).italic())
}

/// Widths for a table of `n` columns: STT, a name column, then equal figure columns.
fn widths(n: usize, name: usize) -> Vec<usize> {
    let stt = 760;
    let rest = (TEXT_W - stt - name) / (n - 2);
    let mut w = vec![stt, name];
    w.extend(std::iter::repeat_n(rest, n - 2));
    w
}

fn sum_states(states: &BTreeMap<String, i64>, keys: &[&str]) -> i64 {
    keys.iter().filter_map(|k| states.get(*k)).sum()
}

/// The document, as the bytes of a .docx file.
pub fn docx(r: &Report, lang: Lang, cfg: &ReportConfig) -> Result<Vec<u8>> {
    let w = if lang == Lang::Vi { &VI } else { &EN };
    let l = lang.labels();
    let n = |x: i64| number(x, lang);
    let mut doc = Docx::new()
        .page_size(PAGE_W, PAGE_H)
        .page_margin(
            PageMargin::new()
                .top(MARGIN_TOP)
                .bottom(MARGIN_BOTTOM)
                .left(MARGIN_LEFT)
                .right(MARGIN_RIGHT)
                .header(567)
                .footer(567),
        )
        .default_fonts(
            RunFonts::new()
                .ascii(FONT)
                .hi_ansi(FONT)
                .cs(FONT)
                .east_asia(FONT),
        )
        .default_size(PT14)
        // Page numbers from the second page, top centre (Decree 30/2020).
        .header(
            Header::new().add_paragraph(para(AlignmentType::Center).add_page_num(PageNum::new())),
        )
        .first_header(Header::new())
        .title_pg();

    // Letterhead: agency and number (left), national motto and place/date (right).
    let left = cell(
        LEFT_W,
        vec![
            para(AlignmentType::Center).add_run(run(cfg.superior.to_uppercase(), PT12)),
            para(AlignmentType::Center).add_run(run(cfg.agency.to_uppercase(), PT12).bold()),
            rule(LEFT_W, 1_400),
            para(AlignmentType::Center)
                .line_spacing(LineSpacing::new().before(120).after(0))
                .add_run(run(
                    format!("{}        /{}", w.number, cfg.symbol.to_uppercase()),
                    PT13,
                )),
        ],
    );
    let right = cell(
        RIGHT_W,
        vec![
            para(AlignmentType::Center).add_run(run(w.motto1, PT12).bold()),
            para(AlignmentType::Center).add_run(run(w.motto2, PT13).bold()),
            rule(RIGHT_W, if lang == Lang::Vi { 3_250 } else { 3_900 }),
            para(AlignmentType::Center)
                .line_spacing(LineSpacing::new().before(120).after(0))
                .add_run(run((w.date)(&cfg.place), PT14).italic()),
        ],
    );
    doc = doc.add_table(
        Table::without_borders(vec![TableRow::new(vec![left, right])])
            .set_grid(vec![LEFT_W, RIGHT_W])
            .width(TEXT_W, WidthType::Dxa)
            .margins(TableCellMargins::new().margin(0, 0, 0, 0)),
    );

    // Title: the kind of document, then what it is about.
    let subject = match &r.campaign {
        Some(c) => format!("{} “{}”", w.subject, c.name),
        None => format!(
            "{} {}",
            w.subject_all,
            r.campaigns
                .iter()
                .map(|c| format!("“{}”", c.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let subject = if cfg.title.trim().is_empty() {
        subject
    } else {
        format!("{subject} {} {}", w.under, cfg.title.trim())
    };
    doc = doc
        .add_paragraph(
            para(AlignmentType::Center)
                .line_spacing(LineSpacing::new().before(360).after(0))
                .add_run(run(w.kind, PT14).bold()),
        )
        .add_paragraph(para(AlignmentType::Center).add_run(run(subject, PT14).bold()))
        .add_paragraph(rule(TEXT_W, 2_400).line_spacing(LineSpacing::new().before(80).after(0)))
        .add_paragraph(para(AlignmentType::Center).add_run(run("", PT11)));

    // Introduction.
    let plan = cfg.title.trim();
    let intro = match (plan.is_empty(), lang) {
        (true, Lang::Vi) => format!("Kết quả {}", w.intro),
        (true, Lang::En) => format!("The results {}", w.intro),
        (false, Lang::Vi) => format!("Thực hiện {plan}, kết quả {}", w.intro),
        (false, Lang::En) => format!("Pursuant to {plan}, the results {}", w.intro),
    };
    doc = doc.add_paragraph(body(intro));
    let filter = super::filter_line(&r.filter, lang);
    if !filter.is_empty() {
        doc = doc.add_paragraph(body(format!("{}: {filter}.", w.filter)));
    }

    doc = doc.add_paragraph(heading(w.part_results));

    // 1. What was sent, when, to whom.
    doc = doc.add_paragraph(heading(w.sec_what));
    let get = |s: &str| r.by_state.get(s).copied().unwrap_or(0);
    let suppressed = get(state::SUPPRESSED);
    let pending = get("queued") + get("claimed") + get("sending");
    let tried = r.recipients - suppressed - pending;
    match &r.campaign {
        Some(c) => {
            doc = doc.add_paragraph(body(match lang {
                Lang::Vi => format!(
                    "- Nội dung tin nhắn (tên định danh {}): “{}” Mỗi tin gồm {} ký tự, tính cước là {} tin nhắn.",
                    c.sender, sentence(&c.message_text), n(c.characters), n(c.segments)
                ),
                Lang::En => format!(
                    "- Message (sender name {}): “{}” Each message has {} characters and is billed as {} SMS.",
                    c.sender, sentence(&c.message_text), n(c.characters), n(c.segments)
                ),
            }));
        }
        None => {
            for c in &r.campaigns {
                doc = doc.add_paragraph(body(match lang {
                    Lang::Vi => format!(
                        "- “{}” (tên định danh {}): “{}”; {} thuê bao.",
                        c.name,
                        c.sender,
                        c.message_text,
                        n(c.recipients)
                    ),
                    Lang::En => format!(
                        "- “{}” (sender name {}): “{}”; {} subscribers.",
                        c.name,
                        c.sender,
                        c.message_text,
                        n(c.recipients)
                    ),
                }));
            }
        }
    }
    if let (Some(a), Some(b)) = (&r.first_submit_at, &r.last_submit_at) {
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Thời gian gửi: từ {} đến {} (giờ Việt Nam).",
                when(a, lang),
                when(b, lang)
            ),
            Lang::En => format!(
                "- Sent from {} to {} (Vietnam time).",
                when(a, lang),
                when(b, lang)
            ),
        }));
    }
    let list = r
        .campaign
        .as_ref()
        .map(|c| c.list.clone())
        .unwrap_or_default();
    let mut who = match lang {
        Lang::Vi => format!(
            "- Đối tượng nhận tin: {} thuê bao di động{}",
            n(r.recipients),
            if list.is_empty() {
                String::new()
            } else {
                format!(" trong danh sách “{list}”")
            }
        ),
        Lang::En => format!(
            "- Recipients: {} mobile subscribers{}",
            n(r.recipients),
            if list.is_empty() {
                String::new()
            } else {
                format!(" on the list “{list}”")
            }
        ),
    };
    if suppressed > 0 {
        who += &match lang {
            Lang::Vi => format!(
                "; trong đó {} thuê bao đã đăng ký từ chối nhận tin nên không gửi",
                n(suppressed)
            ),
            Lang::En => format!(
                "; of these, {} had opted out and were not sent the message",
                n(suppressed)
            ),
        };
    }
    if pending > 0 {
        who += &match lang {
            Lang::Vi => format!("; {} thuê bao chưa được gửi", n(pending)),
            Lang::En => format!("; {} not sent yet", n(pending)),
        };
    }
    who += &match lang {
        Lang::Vi => format!(". Số thuê bao đã gửi tin: {}.", n(tried)),
        Lang::En => format!(". Messages sent to: {} subscribers.", n(tried)),
    };
    doc = doc.add_paragraph(body(who));

    // 2. Results, in words then in a table.
    doc = doc.add_paragraph(heading(w.sec_result));
    let delivered = get(state::DELIVERED);
    let awaiting = get(state::SUBMITTED);
    let handed = get(state::HANDED);
    let failed = get(state::FAILED);
    let expired = get(state::EXPIRED);
    let rejected = get(state::REJECTED);
    let unknown = get(state::UNKNOWN);
    let not_delivered = failed + expired + rejected;
    let share = |x: i64| percent(x, r.recipients, lang);
    doc = doc.add_paragraph(body(match lang {
        Lang::Vi => format!(
            "- Đã đến máy người nhận: {} thuê bao ({}% tổng số thuê bao).",
            n(delivered),
            share(delivered)
        ),
        Lang::En => format!(
            "- Delivered to the phone: {} subscribers ({}% of all subscribers).",
            n(delivered),
            share(delivered)
        ),
    }));
    if awaiting > 0 {
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Đã gửi, nhà mạng chưa xác nhận tin đã đến máy: {} thuê bao ({}%).",
                n(awaiting),
                share(awaiting)
            ),
            Lang::En => format!(
                "- Sent, the carrier has not yet confirmed delivery: {} subscribers ({}%).",
                n(awaiting),
                share(awaiting)
            ),
        }));
    }
    if handed > 0 {
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Đã chuyển nhà mạng tự gửi, chưa có kết quả: {} thuê bao ({}%).",
                n(handed),
                share(handed)
            ),
            Lang::En => format!(
                "- Handed to the carrier to send, its results not yet in: {} subscribers ({}%).",
                n(handed),
                share(handed)
            ),
        }));
    }
    if not_delivered > 0 {
        let mut parts = Vec::new();
        for (k, v) in [
            (state::REJECTED, rejected),
            (state::FAILED, failed),
            (state::EXPIRED, expired),
        ] {
            if v > 0 {
                parts.push(format!("{} {}", n(v), part_words(k, lang)));
            }
        }
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Không thành công: {} thuê bao ({}%), gồm: {}.",
                n(not_delivered),
                share(not_delivered),
                parts.join("; ")
            ),
            Lang::En => format!(
                "- Not delivered: {} subscribers ({}%): {}.",
                n(not_delivered),
                share(not_delivered),
                parts.join("; ")
            ),
        }));
    }
    if unknown > 0 {
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Chưa rõ kết quả (cổng gửi tin không phản hồi): {} thuê bao ({}%).",
                n(unknown),
                share(unknown)
            ),
            Lang::En => format!(
                "- Outcome unknown (the gateway did not answer): {} subscribers ({}%).",
                n(unknown),
                share(unknown)
            ),
        }));
    }
    if r.possible_duplicates > 0 {
        doc = doc.add_paragraph(body(match lang {
            Lang::Vi => format!(
                "- Có thể nhận trùng (chưa rõ kết quả nên đã gửi lại): {} thuê bao.",
                n(r.possible_duplicates)
            ),
            Lang::En => format!(
                "- May have received it twice (outcome unknown, so sent again): {} subscribers.",
                n(r.possible_duplicates)
            ),
        }));
    }
    let mut t = 0;
    let mut next_table = |title: &str| {
        t += 1;
        caption(format!("{} {t}. {title}", w.table))
    };
    let mut rows = Vec::new();
    for st in DOC_STATES {
        let v = get(st);
        if v > 0 {
            rows.push(vec![
                (rows.len() + 1).to_string(),
                state_words(st, lang),
                n(v),
                share(v),
            ]);
        }
    }
    rows.push(vec![
        String::new(),
        w.total.to_string(),
        n(r.recipients),
        percent(r.recipients, r.recipients, lang),
    ]);
    doc = doc.add_paragraph(next_table(l.state)).add_table(figures(
        &[w.no, l.state, w.subscribers, w.share],
        &widths(4, 4_300),
        rows,
        true,
    ));

    // 3 and 4. By carrier and by district: the state groups present.
    let present: Vec<(&str, &[&str])> = GROUPS
        .iter()
        .filter(|(_, states)| states.iter().any(|s| get(s) > 0))
        .copied()
        .collect();
    for (sec, first_col, rows) in [
        (
            w.sec_carrier,
            l.carrier,
            r.by_carrier
                .iter()
                .map(|b| (carrier_name(&b.name), b))
                .collect::<Vec<_>>(),
        ),
        (
            w.sec_district,
            l.district,
            r.by_district
                .iter()
                .map(|b| (district_name(&b.name, lang), b))
                .collect(),
        ),
    ] {
        let mut head = vec![w.no, first_col, w.subscribers];
        head.extend(present.iter().map(|(k, _)| group_name(k, lang)));
        let mut body_rows: Vec<Vec<String>> = rows
            .iter()
            .enumerate()
            .map(|(i, (name, b))| {
                let mut row = vec![(i + 1).to_string(), name.clone(), n(b.total)];
                row.extend(
                    present
                        .iter()
                        .map(|(_, states)| n(sum_states(&b.states, states))),
                );
                row
            })
            .collect();
        let mut total = vec![String::new(), w.total.to_string(), n(r.recipients)];
        total.extend(
            present
                .iter()
                .map(|(_, states)| n(states.iter().map(|s| get(s)).sum())),
        );
        body_rows.push(total);
        doc = doc
            .add_paragraph(heading(sec))
            .add_paragraph(next_table(sec.split_once(". ").map_or(sec, |x| x.1)))
            .add_table(figures(&head, &widths(head.len(), 2_300), body_rows, true));
    }

    // 5. Why: a plain summary beside the gateway's own words (codes removed).
    if !r.errors.is_empty() {
        // Reasons that differ only by a code read the same once the codes are removed: one row.
        let mut merged: Vec<(&str, String, i64)> = Vec::new();
        for e in &r.errors {
            let words = match e.reason.as_str() {
                "(no reason recorded)" | "(other reasons)" => "-".to_string(),
                reason => format!("“{}”", plain_words(reason)),
            };
            let summary = reason_summary(e, lang);
            match merged
                .iter_mut()
                .find(|(s, w, _)| *s == summary && *w == words)
            {
                Some(row) => row.2 += e.count,
                None => merged.push((summary, words, e.count)),
            }
        }
        let rows: Vec<Vec<String>> = merged
            .into_iter()
            .enumerate()
            .map(|(i, (summary, words, count))| {
                vec![(i + 1).to_string(), summary.to_string(), words, n(count)]
            })
            .collect();
        doc = doc
            .add_paragraph(heading(w.sec_reasons))
            .add_paragraph(next_table(
                w.sec_reasons
                    .split_once(". ")
                    .map_or(w.sec_reasons, |x| x.1),
            ))
            .add_table(figures(
                &[w.no, w.reason, w.gateway_words, w.subscribers],
                &[760, 3_600, 3_394, 1_600],
                rows,
                false,
            ));
    }

    // 6. Cost.
    doc = doc.add_paragraph(heading(w.sec_cost));
    let parts: i64 = r.cost.by_carrier.iter().map(|c| c.parts).sum();
    let currency = |c: &str| -> String {
        match (lang, c) {
            (Lang::Vi, "VND") => "đồng".into(),
            (_, c) => c.to_string(),
        }
    };
    match (&r.cost.total, &r.cost.currency) {
        (Some(total), Some(cur)) => {
            doc = doc.add_paragraph(body(match lang {
                Lang::Vi => format!(
                    "Số tin nhắn nhà mạng đã nhận và tính cước: {}; tổng chi phí: {} {}.",
                    n(parts),
                    amount(*total, lang),
                    currency(cur)
                ),
                Lang::En => format!(
                    "SMS parts accepted and billed by the carriers: {}; total cost: {} {}.",
                    n(parts),
                    amount(*total, lang),
                    currency(cur)
                ),
            }));
        }
        _ => {
            doc = doc.add_paragraph(body(match lang {
                Lang::Vi => format!(
                    "Số tin nhắn nhà mạng đã nhận và tính cước: {}; chưa tính được tổng chi phí vì {}.",
                    n(parts),
                    no_price(&r.cost, lang)
                ),
                Lang::En => format!(
                    "SMS parts accepted and billed by the carriers: {}; the total cost is not computed: {}.",
                    n(parts),
                    no_price(&r.cost, lang)
                ),
            }));
        }
    }
    if !r.cost.by_carrier.is_empty() {
        let cur = r.cost.currency.as_deref().map(currency);
        let price_head = match (&cur, lang) {
            (Some(c), Lang::Vi) => format!("Đơn giá ({c})"),
            (Some(c), Lang::En) => format!("Price per part ({c})"),
            (None, _) => w.price.to_string(),
        };
        let amount_head = match (&cur, lang) {
            (Some(c), Lang::Vi) => format!("Thành tiền ({c})"),
            (Some(c), Lang::En) => format!("Amount ({c})"),
            (None, _) => w.amount.to_string(),
        };
        let mut rows: Vec<Vec<String>> = r
            .cost
            .by_carrier
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    (i + 1).to_string(),
                    carrier_name(&c.carrier),
                    n(c.parts),
                    c.price_per_part
                        .map_or_else(|| "-".into(), |p| amount(p, lang)),
                    c.cost.map_or_else(|| "-".into(), |x| amount(x, lang)),
                ]
            })
            .collect();
        rows.push(vec![
            String::new(),
            w.total.to_string(),
            n(parts),
            String::new(),
            r.cost.total.map_or_else(|| "-".into(), |x| amount(x, lang)),
        ]);
        doc = doc
            .add_paragraph(next_table(
                w.sec_cost.split_once(". ").map_or(w.sec_cost, |x| x.1),
            ))
            .add_table(figures(
                &[w.no, l.carrier, w.parts, &price_head, &amount_head],
                &widths(5, 2_300),
                rows,
                true,
            ));
    }

    // II. Assessment: the office's words, not the program's.
    doc = doc
        .add_paragraph(heading(w.part_assessment))
        .add_paragraph(body(w.assessment_placeholder))
        .add_paragraph(body(w.closing));

    // Recipients (left) and signature (right).
    let mut left = vec![
        para(AlignmentType::Left)
            .line_spacing(LineSpacing::new().before(120).after(0))
            .add_run(run(w.recipients_head, PT12).bold().italic()),
    ];
    for line in &cfg.recipients {
        left.push(para(AlignmentType::Left).add_run(run(format!("- {line}"), PT11)));
    }
    let mut right = Vec::new();
    for (i, line) in cfg.signer_title.lines().enumerate() {
        let p = para(AlignmentType::Center).add_run(run(line.to_uppercase(), PT14).bold());
        right.push(if i == 0 {
            p.line_spacing(LineSpacing::new().before(120).after(0))
        } else {
            p
        });
    }
    for _ in 0..4 {
        right.push(para(AlignmentType::Center).add_run(run("", PT14)));
    }
    right.push(para(AlignmentType::Center).add_run(run(cfg.signer.clone(), PT14).bold()));
    doc = doc.add_table(
        Table::without_borders(vec![TableRow::new(vec![
            cell(4_200, left),
            cell(TEXT_W - 4_200, right),
        ])])
        .set_grid(vec![4_200, TEXT_W - 4_200])
        .width(TEXT_W, WidthType::Dxa),
    );

    // Annex line: the log's check code, so the figures can be traced to the record.
    let annex = match &r.audit_head {
        Some(h) => format!(
            "{}: {h}. {} {}.",
            w.annex,
            w.generated,
            when(&r.generated_at, lang)
        ),
        None => format!(
            "{}. {} {}.",
            w.annex_broken,
            w.generated,
            when(&r.generated_at, lang)
        ),
    };
    doc = doc.add_paragraph(
        Paragraph::new()
            .line_spacing(LineSpacing::new().before(360).after(0))
            .add_run(run(annex, PT11).italic()),
    );

    let mut out = std::io::Cursor::new(Vec::new());
    doc.build()
        .pack(&mut out)
        .context("could not write the Word document")?;
    Ok(out.into_inner())
}

/// The official report as PDF: the Word document converted by LibreOffice (`soffice`, or
/// `libreoffice`, on the PATH), in a private profile so that a running LibreOffice is not
/// disturbed.
pub fn pdf(docx: &[u8]) -> Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!(
        "smscast-pdf-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let result = convert(docx, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn convert(docx: &[u8], dir: &std::path::Path) -> Result<Vec<u8>> {
    let input = dir.join("report.docx");
    std::fs::write(&input, docx)?;
    let profile = format!(
        "-env:UserInstallation=file://{}",
        dir.join("profile").display()
    );
    let mut last_error = None;
    for program in ["soffice", "libreoffice"] {
        let out = std::process::Command::new(program)
            .args([
                profile.as_str(),
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
            ])
            .arg(dir)
            .arg(&input)
            .output();
        match out {
            Ok(o) if o.status.success() && dir.join("report.pdf").exists() => {
                return std::fs::read(dir.join("report.pdf")).context("could not read the PDF");
            }
            Ok(o) => {
                anyhow::bail!(
                    "LibreOffice could not convert the report to PDF: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "--format pdf needs LibreOffice (soffice) on the PATH, e.g. apt-get install \
         libreoffice-writer-nogui; or use --format docx and save as PDF from Word ({})",
        last_error.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Every delivery state, in the order the document lists them (a state not listed here
/// would be missing from the table: the test checks the rows add up).
const DOC_STATES: [&str; 11] = [
    state::DELIVERED,
    state::SUBMITTED,
    state::HANDED,
    state::FAILED,
    state::EXPIRED,
    state::REJECTED,
    state::UNKNOWN,
    state::SUPPRESSED,
    "queued",
    "claimed",
    "sending",
];

/// A delivery state in the document's words (distinct from the "not delivered" total).
fn state_words(st: &str, lang: Lang) -> String {
    let s = match (st, lang) {
        (state::DELIVERED, Lang::Vi) => "Đã đến máy người nhận",
        (state::SUBMITTED, Lang::Vi) => "Đã gửi, chờ nhà mạng xác nhận",
        (state::FAILED, Lang::Vi) => "Nhà mạng báo không chuyển được",
        (state::EXPIRED, Lang::Vi) => "Hết thời hạn, tin chưa đến máy",
        (state::REJECTED, Lang::Vi) => "Bị từ chối khi gửi",
        (state::UNKNOWN, Lang::Vi) => "Chưa rõ kết quả",
        (state::SUPPRESSED, Lang::Vi) => "Không gửi (đã từ chối nhận tin)",
        (state::HANDED, Lang::Vi) => "Đã chuyển nhà mạng tự gửi, chờ kết quả",
        (state::DELIVERED, _) => "Delivered to the phone",
        (state::SUBMITTED, _) => "Sent, awaiting the carrier's confirmation",
        (state::FAILED, _) => "The carrier could not deliver",
        (state::EXPIRED, _) => "Expired before reaching the phone",
        (state::REJECTED, _) => "Refused when sent",
        (state::UNKNOWN, _) => "Outcome unknown",
        (state::SUPPRESSED, _) => "Not sent (opted out)",
        (state::HANDED, _) => "Handed to the carrier to send, awaiting its results",
        (other, _) => return lang.state(other),
    };
    s.to_string()
}

/// Why there is no total cost, in words for the document (not the configuration hint).
fn no_price(cost: &super::Cost, lang: Lang) -> String {
    let missing: Vec<String> = cost
        .by_carrier
        .iter()
        .filter(|c| c.price_per_part.is_none())
        .map(|c| carrier_name(&c.carrier))
        .collect();
    match (cost.currency.is_some(), lang) {
        (false, Lang::Vi) => "chưa có đơn giá".into(),
        (false, _) => "no prices were given".into(),
        (true, Lang::Vi) => format!("chưa có đơn giá của {}", missing.join(", ")),
        (true, _) => format!("no price for {}", missing.join(", ")),
    }
}

/// How a part of the "not delivered" total is said in a sentence.
fn part_words(st: &str, lang: Lang) -> &'static str {
    match (st, lang) {
        (state::REJECTED, Lang::Vi) => "bị từ chối khi gửi (số không hợp lệ hoặc không nhận tin)",
        (state::FAILED, Lang::Vi) => "nhà mạng báo không chuyển được đến máy",
        (state::EXPIRED, Lang::Vi) => "hết thời hạn mà tin chưa đến được máy",
        (state::REJECTED, _) => "refused when sent (invalid number or not accepting messages)",
        (state::FAILED, _) => "the carrier could not deliver to the phone",
        _ => "expired before reaching the phone",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_the_vietnamese_way() {
        assert_eq!(number(1_234_567, Lang::Vi), "1.234.567");
        assert_eq!(number(1_234_567, Lang::En), "1,234,567");
        assert_eq!(percent(1, 3, Lang::Vi), "33,3");
        assert_eq!(amount(19_500.0, Lang::Vi), "19.500");
        assert_eq!(amount(12.5, Lang::Vi), "12,50");
        assert_eq!(
            when("2022-06-26 08:00 +07:00", Lang::Vi),
            "08 giờ 00 ngày 26/6/2022"
        );
    }
}
