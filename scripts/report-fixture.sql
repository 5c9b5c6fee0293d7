-- Synthetic campaign for the report benchmark and the HTML render: :n deliveries of one
-- campaign (id 1, "bench") over 10 days, 07:00-21:00 Vietnam time, with a realistic mix of
-- carriers (56/20/17/4/3 %), the 15 Long An districts and every final state, plus one attempt
-- per tried delivery (and a 503 retry before it for 2 % of them).
-- Usage: sqlite3 -cmd ".parameter set :n 10000000" FILE < scripts/report-fixture.sql
-- The file must have the smscast schema (run any smscast command on it first). Subscribers
-- rows are not generated: the report never reads them.
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;
INSERT INTO lists (id, name, created_ms) VALUES (1, 'bench', 1654041600000);
INSERT INTO campaigns (id, name, list_id, message_text, encoding, segments, characters, sender,
    gateway, rate, window_start, window_end, max_attempts, cap_hours, state, created_by,
    created_ms, launched_ms, completed_ms)
VALUES (1, 'bench', 1,
    'Hưởng ứng Tháng hành động phòng, chống ma túy 2022: Nâng cao hiệu quả công tác cai nghiện ma túy và quản lý người sử dụng trái phép chất ma túy - Vì một cộng đồng khỏe mạnh và an toàn.',
    'UCS-2', 3, 184, 'LONGAN', 'sim', 1000, 420, 1260, 5, 24, 'completed', 'bench',
    1654020000000, 1654041600000, 1654909200000);
INSERT INTO deliveries (id, campaign_id, subscriber_id, msisdn, carrier, district, state,
    attempts, gateway, gateway_id, last_error, submitted_ms, final_ms)
SELECT i, 1, i, '849' || printf('%08d', i),
  CASE WHEN c < 56 THEN 'viettel' WHEN c < 76 THEN 'vinaphone' WHEN c < 93 THEN 'mobifone'
       WHEN c < 97 THEN 'vietnamobile' ELSE 'gmobile' END,
  CASE i % 15 WHEN 0 THEN 'Tân An' WHEN 1 THEN 'Kiến Tường' WHEN 2 THEN 'Tân Hưng'
       WHEN 3 THEN 'Vĩnh Hưng' WHEN 4 THEN 'Mộc Hóa' WHEN 5 THEN 'Tân Thạnh'
       WHEN 6 THEN 'Thạnh Hóa' WHEN 7 THEN 'Đức Huệ' WHEN 8 THEN 'Đức Hòa' WHEN 9 THEN 'Bến Lức'
       WHEN 10 THEN 'Thủ Thừa' WHEN 11 THEN 'Tân Trụ' WHEN 12 THEN 'Cần Đước'
       WHEN 13 THEN 'Cần Giuộc' ELSE 'Châu Thành' END,
  st, CASE WHEN st = 'suppressed' THEN 0 WHEN i % 50 = 0 THEN 2 ELSE 1 END,
  CASE WHEN st = 'suppressed' THEN NULL ELSE 'sim' END,
  CASE WHEN st IN ('submitted', 'delivered', 'failed', 'expired') THEN 'SM' || i END,
  CASE st WHEN 'rejected' THEN 'gateway rejected the number (HTTP 400, code 21211): The ''To'' number is not a valid phone number.'
          WHEN 'failed' THEN 'receipt: undelivered (error ' || (30 + i % 4) || ')'
          WHEN 'expired' THEN 'receipt: expired'
          WHEN 'unknown' THEN 'no answer within 10 s after the request went out' END,
  CASE WHEN st IN ('submitted', 'delivered', 'failed', 'expired') THEN t END,
  CASE WHEN st IN ('delivered', 'failed', 'expired') THEN t + 500 + (r * 37) % 120000
       WHEN st = 'rejected' THEN t END
FROM (SELECT value AS i, (value * 2654435761) % 100 AS c, (value * 40503) % 1000 AS r,
        -- day (value-1) / per_day, then evenly over the 14 hours 07:00-21:00 +07:00
        1654041600000 + ((value - 1) / per_day) * 86400000
            + ((value - 1) % per_day) * (50400000 / per_day) AS t,
        CASE WHEN (value * 40503) % 1000 < 850 THEN 'delivered'
             WHEN (value * 40503) % 1000 < 900 THEN 'submitted'
             WHEN (value * 40503) % 1000 < 930 THEN 'failed'
             WHEN (value * 40503) % 1000 < 950 THEN 'expired'
             WHEN (value * 40503) % 1000 < 980 THEN 'rejected'
             WHEN (value * 40503) % 1000 < 990 THEN 'unknown'
             ELSE 'suppressed' END AS st
      FROM generate_series(1, :n), (SELECT (:n + 9) / 10 AS per_day));
INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker, started_ms, latency_ms,
    http_status, gateway_code, outcome, error)
SELECT 1, id, 1, 'w1', COALESCE(submitted_ms, final_ms, 1654041600000) - 60000,
    20 + (id * 7919) % 300, 503, NULL, 'retry', 'gateway error (HTTP 503): try again later'
FROM deliveries WHERE campaign_id = 1 AND state <> 'suppressed' AND id % 50 = 0;
INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker, started_ms, latency_ms,
    http_status, gateway_code, outcome, error)
SELECT 1, id, attempts, 'w1', COALESCE(submitted_ms, final_ms, 1654041600000) - 40,
  CASE WHEN state = 'unknown' THEN 10000 ELSE 20 + (id * 7919) % 300 END,
  CASE state WHEN 'rejected' THEN 400 WHEN 'unknown' THEN NULL ELSE 201 END,
  CASE state WHEN 'rejected' THEN '21211' END,
  CASE state WHEN 'rejected' THEN 'rejected' WHEN 'unknown' THEN 'in_doubt' ELSE 'submitted' END,
  CASE state WHEN 'rejected' THEN last_error WHEN 'unknown' THEN last_error END
FROM deliveries WHERE campaign_id = 1 AND state <> 'suppressed';
COMMIT;
