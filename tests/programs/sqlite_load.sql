-- SPDX-License-Identifier: BSD-3-Clause
-- In-memory inserts and queries for the drop-in's real-program test.
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL,
	data BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
	WHERE x < 150000)
INSERT INTO t SELECT x, printf('name-%08d-%s', x, hex(x * 7919)), x % 97,
	x * 1.5, zeroblob(x % 300) FROM c;
CREATE INDEX t_grp ON t(grp, name);
SELECT grp, count(*), sum(val), min(name), max(length(data)) FROM t
	GROUP BY grp ORDER BY grp LIMIT 10;
SELECT count(*) FROM t WHERE name LIKE '%-1234%';
UPDATE t SET name = name || '-u' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(name)) FROM t;
SELECT group_concat(name, ',') FROM (SELECT name FROM t ORDER BY name DESC
	LIMIT 20);
SELECT sum(x) FROM (SELECT id * grp AS x FROM t ORDER BY name LIMIT 100000);
CREATE TABLE u AS SELECT grp, group_concat(name) AS names FROM t GROUP BY grp;
SELECT grp, length(names) FROM u ORDER BY length(names) DESC LIMIT 5;
SELECT a.grp, count(*) FROM t AS a JOIN u AS b ON a.grp = b.grp
	WHERE a.id % 11 = 0 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;
