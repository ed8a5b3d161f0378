-- SPDX-License-Identifier: MIT
-- The program whose allocations bench/traces/sqlite.trace.gz holds (see
-- record.sh): sqlite3 on an in-memory database builds a 40,000-row table,
-- two indexes, then aggregates, updates, deletes, joins and sorts.
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, kind INTEGER, price REAL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
INSERT INTO item SELECT i, printf('item-%05d-%08x', i, (i * 2654435761) % 4294967296), i % 37,
  (i * 7919) % 1000 / 10.0,
  substr(replace(hex(zeroblob(64)), '0', char(97 + i % 26)), 1, 20 + i % 100) FROM n;
CREATE INDEX item_kind ON item(kind, price);
CREATE INDEX item_name ON item(name);
SELECT kind, count(*), round(avg(price), 2), max(length(note)) FROM item
  GROUP BY kind ORDER BY 3 DESC LIMIT 5;
UPDATE item SET note = note || '-' || name WHERE kind % 3 = 0;
DELETE FROM item WHERE price < 10;
SELECT count(*), sum(length(note)) FROM item;
SELECT a.kind, count(*) FROM item a JOIN item b ON a.kind = b.kind AND b.id = a.id + 37
  GROUP BY a.kind ORDER BY 2 DESC LIMIT 3;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM item ORDER BY note DESC LIMIT 2000);
