//! Every label of the human-readable report forms (table, CSV, HTML), in English and in
//! Vietnamese. JSON keys never change with the language.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Vi,
}

/// One language's words.
pub struct Labels {
    pub title: &'static str,
    pub title_all: &'static str,
    pub generated: &'static str,
    pub campaign: &'static str,
    pub campaigns: &'static str,
    pub list: &'static str,
    pub gateway: &'static str,
    pub rate: &'static str,
    pub hours: &'static str,
    pub sender: &'static str,
    pub encoding: &'static str,
    pub characters: &'static str,
    pub segments: &'static str,
    pub message: &'static str,
    pub period: &'static str,
    pub sent_from: &'static str,
    pub to: &'static str,
    pub filter: &'static str,
    pub none: &'static str,
    pub recipients: &'static str,
    pub subscriber: &'static str,
    pub state: &'static str,
    pub count: &'static str,
    pub share: &'static str,
    pub total: &'static str,
    pub accepted: &'static str,
    pub sms_parts: &'static str,
    pub possible_duplicates: &'static str,
    pub possible_duplicates_note: &'static str,
    pub by_carrier: &'static str,
    pub carrier: &'static str,
    pub by_district: &'static str,
    pub district: &'static str,
    pub unknown_district: &'static str,
    pub by_day: &'static str,
    pub by_hour: &'static str,
    pub day: &'static str,
    pub hour: &'static str,
    pub submitted_col: &'static str,
    pub delivered_col: &'static str,
    pub failed_col: &'static str,
    pub over_time: &'static str,
    pub errors: &'static str,
    pub reason: &'static str,
    pub no_reason: &'static str,
    pub gateway_words: &'static str,
    pub other_reasons: &'static str,
    pub error_codes: &'static str,
    pub outcome: &'static str,
    pub http_status: &'static str,
    pub code: &'static str,
    pub attempts: &'static str,
    pub submit_latency: &'static str,
    pub receipt_delay: &'static str,
    pub receipts: &'static str,
    pub no_receipts: &'static str,
    pub cost: &'static str,
    pub price: &'static str,
    pub parts: &'static str,
    pub no_prices: &'static str,
    pub unpriced: &'static str,
    pub audit_head: &'static str,
    pub audit_broken: &'static str,
    pub revealed: &'static str,
    pub revealed_note: &'static str,
    pub number: &'static str,
    pub more_rows: &'static str,
    pub section: &'static str,
    pub item: &'static str,
    pub detail: &'static str,
    pub value: &'static str,
    pub time_zone: &'static str,
    pub yes: &'static str,
}

pub const EN: Labels = Labels {
    title: "SMS campaign results report",
    title_all: "SMS campaigns results report (all campaigns)",
    generated: "Generated",
    campaign: "Campaign",
    campaigns: "Campaigns",
    list: "List",
    gateway: "Gateway",
    rate: "Rate (messages/s)",
    hours: "Daily sending hours",
    sender: "Sender",
    encoding: "Encoding",
    characters: "Characters",
    segments: "SMS parts per message",
    message: "Message text as sent",
    period: "Period",
    sent_from: "sent from",
    to: "to",
    filter: "Filter",
    none: "none",
    recipients: "Recipients",
    subscriber: "Subscriber",
    state: "State",
    count: "Count",
    share: "Share",
    total: "Total",
    accepted: "Accepted by gateways",
    sms_parts: "SMS parts",
    possible_duplicates: "Possible duplicates",
    possible_duplicates_note: "in doubt, then sent again",
    by_carrier: "By carrier",
    carrier: "Carrier",
    by_district: "By district",
    district: "District/Town/City",
    unknown_district: "(unknown)",
    by_day: "By day (Vietnam time)",
    by_hour: "By hour (Vietnam time)",
    day: "Day",
    hour: "Hour",
    submitted_col: "Sent",
    delivered_col: "Delivered",
    failed_col: "Not delivered (failed or expired)",
    over_time: "Messages sent over time (Vietnam time)",
    errors: "What failed and why",
    reason: "Reason",
    no_reason: "(no reason recorded)",
    gateway_words: "the gateway's words",
    other_reasons: "(other reasons)",
    error_codes: "Gateway answers to unsuccessful tries",
    outcome: "Outcome",
    http_status: "HTTP status",
    code: "Code",
    attempts: "Submission tries by outcome",
    submit_latency: "Submit latency (ms)",
    receipt_delay: "Delivery receipt delay (ms)",
    receipts: "messages with a receipt",
    no_receipts: "no delivery receipts yet",
    cost: "SMS parts and cost",
    price: "Price per part",
    parts: "Parts",
    no_prices: "no prices configured (add a [prices] table to smscast.toml)",
    unpriced: "no price for",
    audit_head: "Operator log head (keep it)",
    audit_broken: "THE OPERATOR LOG IS BROKEN: run smscast audit --verify",
    revealed: "Recipients in error (full numbers)",
    revealed_note: "shown by",
    number: "Number",
    more_rows: "more rows: use --format csv or json",
    section: "section",
    item: "item",
    detail: "detail",
    value: "value",
    time_zone: "Times in Vietnam time (UTC+7)",
    yes: "yes",
};

pub const VI: Labels = Labels {
    title: "Báo cáo kết quả gửi tin nhắn",
    title_all: "Báo cáo kết quả gửi tin nhắn (tất cả chiến dịch)",
    generated: "Lập lúc",
    campaign: "Chiến dịch",
    campaigns: "Các chiến dịch",
    list: "Danh sách",
    gateway: "Cổng gửi tin",
    rate: "Tốc độ (tin/giây)",
    hours: "Khung giờ gửi hằng ngày",
    sender: "Tên định danh",
    encoding: "Bảng mã",
    characters: "Số ký tự",
    segments: "Số tin nhắn thành phần mỗi tin",
    message: "Nội dung tin nhắn đã gửi",
    period: "Thời gian",
    sent_from: "gửi từ",
    to: "đến",
    filter: "Bộ lọc",
    none: "không",
    recipients: "Thuê bao",
    subscriber: "Thuê bao",
    state: "Trạng thái",
    count: "Số lượng",
    share: "Tỷ lệ",
    total: "Tổng cộng",
    accepted: "Nhà mạng đã nhận",
    sms_parts: "Số tin nhắn thành phần",
    possible_duplicates: "Có thể nhận trùng",
    possible_duplicates_note: "chưa rõ kết quả, đã gửi lại",
    by_carrier: "Theo nhà mạng",
    carrier: "Nhà mạng",
    by_district: "Theo huyện/thị xã/thành phố",
    district: "Huyện/Thị xã/Thành phố",
    unknown_district: "(chưa xác định)",
    by_day: "Theo ngày (giờ Việt Nam)",
    by_hour: "Theo giờ (giờ Việt Nam)",
    day: "Ngày",
    hour: "Giờ",
    submitted_col: "Đã gửi",
    delivered_col: "Đã đến máy",
    failed_col: "Không đến được máy (lỗi, hết hạn)",
    over_time: "Số tin đã gửi theo thời gian (giờ Việt Nam)",
    errors: "Tin không thành công và nguyên nhân",
    reason: "Nguyên nhân",
    no_reason: "(không ghi nhận nguyên nhân)",
    gateway_words: "nguyên văn của cổng gửi tin",
    other_reasons: "(nguyên nhân khác)",
    error_codes: "Phản hồi của cổng gửi tin với các lần gửi không thành công",
    outcome: "Kết quả",
    http_status: "Mã HTTP",
    code: "Mã lỗi",
    attempts: "Số lần gửi theo kết quả",
    submit_latency: "Thời gian gửi (ms)",
    receipt_delay: "Thời gian chờ báo cáo trạng thái (ms)",
    receipts: "tin có báo cáo trạng thái",
    no_receipts: "chưa có báo cáo trạng thái",
    cost: "Số tin nhắn thành phần và chi phí",
    price: "Đơn giá mỗi tin",
    parts: "Số tin",
    no_prices: "chưa cấu hình đơn giá (thêm bảng [prices] vào smscast.toml)",
    unpriced: "chưa có đơn giá cho",
    audit_head: "Mã băm cuối nhật ký thao tác (cần lưu giữ)",
    audit_broken: "NHẬT KÝ THAO TÁC ĐÃ BỊ SỬA ĐỔI: chạy smscast audit --verify",
    revealed: "Thuê bao gửi không thành công (số đầy đủ)",
    revealed_note: "hiển thị bởi",
    number: "Số thuê bao",
    more_rows: "dòng nữa: dùng --format csv hoặc json",
    section: "Phần",
    item: "Mục",
    detail: "Chi tiết",
    value: "Giá trị",
    time_zone: "Thời gian theo giờ Việt Nam (UTC+7)",
    yes: "có",
};

impl Lang {
    pub fn labels(self) -> &'static Labels {
        match self {
            Lang::En => &EN,
            Lang::Vi => &VI,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Vi => "vi",
        }
    }

    /// A delivery state, for people.
    pub fn state(self, state: &str) -> String {
        let s = match (self, state) {
            (Lang::En, "queued") => "Queued",
            (Lang::En, "claimed") => "Claimed",
            (Lang::En, "sending") => "Sending",
            (Lang::En, "submitted") => "Sent (awaiting receipt)",
            (Lang::En, "delivered") => "Delivered",
            (Lang::En, "failed") => "Failed",
            (Lang::En, "expired") => "Expired",
            (Lang::En, "rejected") => "Rejected",
            (Lang::En, "unknown") => "In doubt",
            (Lang::En, "suppressed") => "Not sent (opted out)",
            (Lang::En, "handed") => "Handed to carrier to send",
            (Lang::Vi, "queued") => "Đang chờ gửi",
            (Lang::Vi, "claimed") => "Đang xử lý",
            (Lang::Vi, "sending") => "Đang gửi",
            (Lang::Vi, "submitted") => "Đã gửi (chờ xác nhận đến máy)",
            (Lang::Vi, "delivered") => "Đã đến máy",
            (Lang::Vi, "failed") => "Không chuyển được đến máy",
            (Lang::Vi, "expired") => "Hết hạn",
            (Lang::Vi, "rejected") => "Bị từ chối",
            (Lang::Vi, "unknown") => "Chưa rõ kết quả",
            (Lang::Vi, "suppressed") => "Không gửi (từ chối nhận tin)",
            (Lang::Vi, "handed") => "Đã chuyển nhà mạng gửi",
            (_, other) => other,
        };
        s.to_string()
    }

    /// A campaign's state, for people.
    pub fn campaign_state(self, state: &str) -> String {
        let s = match (self, state) {
            (Lang::En, "draft") => "draft (not launched)",
            (Lang::En, "running") => "sending",
            (Lang::En, "paused") => "paused",
            (Lang::En, "completed") => "completed",
            (Lang::En, "cancelled") => "cancelled",
            (Lang::Vi, "draft") => "chưa gửi (bản nháp)",
            (Lang::Vi, "running") => "đang gửi",
            (Lang::Vi, "paused") => "tạm dừng",
            (Lang::Vi, "completed") => "đã hoàn thành",
            (Lang::Vi, "cancelled") => "đã hủy",
            (_, other) => other,
        };
        s.to_string()
    }

    /// What an error reason means, in a few plain words (the gateway's own words go beside).
    pub fn reason_summary(self, kind: ReasonKind) -> &'static str {
        use ReasonKind::*;
        match (self, kind) {
            (Lang::En, InvalidNumber) => "The number is not valid or cannot receive messages",
            (Lang::En, OptedOut) => "The subscriber refused messages with the provider",
            (Lang::En, NoRoute) => "No route to this carrier",
            (Lang::En, NoAnswer) => "The gateway did not answer",
            (Lang::En, Busy) => "The gateway was overloaded",
            (Lang::En, Refused) => "The gateway refused the message",
            (Lang::En, Expired) => "Expired before reaching the phone",
            (Lang::En, Undelivered) => "The carrier could not deliver it to the phone",
            (Lang::En, Rejected) => "Refused when sent",
            (Lang::En, InDoubt) => "Outcome unknown (no answer from the gateway)",
            (Lang::En, Other) => "Other reasons",
            (Lang::Vi, InvalidNumber) => "Số thuê bao không hợp lệ hoặc không nhận được tin",
            (Lang::Vi, OptedOut) => "Thuê bao đã đăng ký từ chối nhận tin với nhà cung cấp",
            (Lang::Vi, NoRoute) => "Không có đường chuyển tin đến nhà mạng này",
            (Lang::Vi, NoAnswer) => "Cổng gửi tin không phản hồi",
            (Lang::Vi, Busy) => "Cổng gửi tin quá tải",
            (Lang::Vi, Refused) => "Cổng gửi tin từ chối tin nhắn",
            (Lang::Vi, Expired) => "Hết thời hạn mà tin chưa đến được máy",
            (Lang::Vi, Undelivered) => "Nhà mạng báo không chuyển được tin đến máy",
            (Lang::Vi, Rejected) => "Bị từ chối khi gửi",
            (Lang::Vi, InDoubt) => "Chưa rõ kết quả (không nhận được phản hồi)",
            (Lang::Vi, Other) => "Nguyên nhân khác",
        }
    }

    /// An attempt outcome, for people.
    pub fn outcome(self, outcome: &str) -> String {
        let s = match (self, outcome) {
            (Lang::En, "submitted") => "accepted",
            (Lang::En, "retry") => "retried later",
            (Lang::En, "gave_up") => "given up",
            (Lang::En, "rejected") => "rejected",
            (Lang::En, "in_doubt") => "in doubt (no answer)",
            (Lang::Vi, "submitted") => "được nhận",
            (Lang::Vi, "retry") => "gửi lại sau",
            (Lang::Vi, "gave_up") => "ngừng gửi",
            (Lang::Vi, "rejected") => "bị từ chối",
            (Lang::Vi, "in_doubt") => "chưa rõ (không có phản hồi)",
            (Lang::Vi, "recovered_in_doubt") => "chưa rõ (tiến trình dừng)",
            (Lang::Vi, "recovered_resend") => "gửi lại cùng mã (tiến trình dừng)",
            (Lang::Vi, "reconciled_resend") => "đối soát: gửi lại",
            (Lang::Vi, "reconciled_give_up") => "đối soát: ngừng gửi",
            (_, other) => other,
        };
        s.to_string()
    }
}

/// A carrier's display name (the database keeps lowercase codes).
pub fn carrier_name(code: &str) -> String {
    match code {
        "viettel" => "Viettel",
        "vinaphone" => "VinaPhone",
        "mobifone" => "MobiFone",
        "vietnamobile" => "Vietnamobile",
        "gmobile" => "Gmobile",
        "itel" => "iTel",
        "reddi" => "Reddi",
        other => other,
    }
    .to_string()
}

/// What kind of failure an error reason describes: read from the gateway's words, else from
/// the state the messages ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    InvalidNumber,
    OptedOut,
    NoRoute,
    NoAnswer,
    Busy,
    Refused,
    Expired,
    Undelivered,
    Rejected,
    InDoubt,
    Other,
}

impl ReasonKind {
    /// `main_state` is the delivery state most of the reason's messages are in.
    pub fn of(reason: &str, main_state: &str) -> Self {
        let r = reason.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| r.contains(w));
        if has(&["opted out", "unsubscribed", "blacklist"]) {
            ReasonKind::OptedOut
        } else if has(&[
            "not a valid phone number",
            "invalid phone",
            "invalid number",
            "refused this number",
            "rejected for this recipient",
        ]) {
            ReasonKind::InvalidNumber
        } else if has(&["cannot route", "not routable"]) {
            ReasonKind::NoRoute
        } else if has(&[
            "did not answer",
            "could not connect",
            "timed out",
            "timeout",
        ]) {
            ReasonKind::NoAnswer
        } else if has(&["busy", "throttled", "temporal failure", "too many"]) {
            ReasonKind::Busy
        } else if r.starts_with("receipt: expired") || main_state == "expired" {
            ReasonKind::Expired
        } else if r.starts_with("receipt:") || main_state == "failed" {
            ReasonKind::Undelivered
        } else if has(&["rejected the message", "rejected by the gateway", "refused"]) {
            ReasonKind::Refused
        } else {
            match main_state {
                "rejected" => ReasonKind::Rejected,
                "unknown" => ReasonKind::InDoubt,
                _ => ReasonKind::Other,
            }
        }
    }
}

/// The gateway's own words without the technical codes (HTTP statuses, error numbers), for the
/// official document: "rejected for this recipient (HTTP 400, code 21211): The 'To' number is
/// not a valid phone number." gives "The 'To' number is not a valid phone number.".
pub fn plain_words(reason: &str) -> String {
    let text = match reason.split_once("): ") {
        Some((_, after)) if !after.trim().is_empty() => after,
        _ => reason,
    };
    let text = text.strip_prefix("receipt: ").unwrap_or(text);
    // Drop every parenthesised group that holds a code, and bare "HTTP nnn".
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let inner = &rest[open + 1..open + len];
        out.push_str(&rest[..open]);
        if !(inner.contains("HTTP") || inner.contains("code") || inner.contains("error")) {
            out.push_str(&rest[open..=open + len]);
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    let words: Vec<&str> = out
        .split_whitespace()
        .filter(|w| !w.eq_ignore_ascii_case("http"))
        .collect();
    let mut s = words.join(" ");
    while let Some(i) = s.find("HTTP ") {
        s.replace_range(i..i + 5, "");
    }
    s.trim_matches(|c: char| c == ':' || c.is_whitespace())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_summed_up_in_plain_words() {
        let twilio = "rejected for this recipient (HTTP 400, code 21211): The 'To' number is not a valid phone number.";
        assert_eq!(
            ReasonKind::of(twilio, "rejected"),
            ReasonKind::InvalidNumber
        );
        assert_eq!(
            plain_words(twilio),
            "The 'To' number is not a valid phone number."
        );
        assert_eq!(
            ReasonKind::of("receipt: undelivered", "failed"),
            ReasonKind::Undelivered
        );
        assert_eq!(plain_words("receipt: failed (UNDELIV, error 1)"), "failed");
        assert_eq!(
            ReasonKind::of("(no reason recorded)", "expired"),
            ReasonKind::Expired
        );
        assert_eq!(
            ReasonKind::of("the gateway did not answer in time", "unknown"),
            ReasonKind::NoAnswer
        );
        assert_eq!(
            plain_words("Kannel is busy (HTTP 503): Temporal failure, try again later."),
            "Temporal failure, try again later."
        );
        assert!(!plain_words("HTTP 500 without a message sid in the answer").contains("HTTP"));
    }
}
