-- SPDX-License-Identifier: BSD-3-Clause
-- sqlite-inserts: the bulk-insert pattern of database benchmarks (the
-- speedtest1 shape), written for slabkit.  An in-memory database (run
-- with `sqlite3 :memory:`), a table with two indexes, rows inserted in
-- transactions from a recursive CTE, then updates, deletes and a
-- grouped scan.  The page cache allocates 4 KiB pages plus a small
-- header: the "blocks just above a page" case of bench/README.md.
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c BLOB);
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
	WHERE i < 400000)
INSERT INTO t(a, b, c)
	SELECT (i * 7919) % 100003, printf('row-%08d-%s', i, hex(i * 31)),
	    zeroblob(16 + (i * 13) % 200) FROM n;
COMMIT;
BEGIN;
UPDATE t SET b = b || '-updated' WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 0;
COMMIT;
SELECT count(*), sum(length(b)), sum(length(c)) FROM t;
SELECT a % 97 AS k, count(*) FROM t GROUP BY k ORDER BY k LIMIT 3;
