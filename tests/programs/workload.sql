-- workload.sql - sqlite3: 150k rows, indexes, aggregates, joins, a sort, a
-- transaction rolled back, integrity check.  Output is compared as text.
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -16000;
CREATE TABLE item (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, price REAL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO item SELECT i, (i * 7919) % 97, printf('item-%06d-%s', i, substr('abcdefghij', 1 + i % 10, 3)),
       ((i * 104729) % 100000) / 100.0, hex(randomblob(0)) || printf('%x', i * 2654435761 % 4294967296)
FROM n;
CREATE INDEX item_grp ON item(grp, price);
CREATE INDEX item_name ON item(name);
CREATE TABLE grp (id INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < 96)
INSERT INTO grp SELECT i, 'group ' || i FROM g;
SELECT count(*), sum(price), min(name), max(name), avg(length(note)) FROM item;
SELECT g.label, count(*), round(sum(i.price), 2), round(avg(i.price), 4), max(i.price)
  FROM item i JOIN grp g ON g.id = i.grp GROUP BY g.id ORDER BY g.id LIMIT 12;
SELECT grp, group_concat(id, ',') FROM (SELECT grp, id FROM item WHERE grp < 3 AND price > 999.5 ORDER BY id) GROUP BY grp;
SELECT count(DISTINCT substr(name, 13)), count(*) FILTER (WHERE name LIKE '%-cde') FROM item;
SELECT name, price FROM item ORDER BY price DESC, name LIMIT 5;
SELECT name FROM item WHERE name BETWEEN 'item-070000' AND 'item-070010' ORDER BY name;
UPDATE item SET price = price * 1.1, note = note || '-updated' WHERE grp % 5 = 0;
DELETE FROM item WHERE id % 13 = 0;
SELECT count(*), round(sum(price), 2) FROM item;
BEGIN;
DELETE FROM item WHERE grp > 10;
SELECT count(*) FROM item;
ROLLBACK;
SELECT count(*) FROM item;
SELECT grp, ntile, count(*) FROM (SELECT grp, ntile(4) OVER (PARTITION BY grp ORDER BY price) AS ntile FROM item WHERE grp < 4)
  GROUP BY grp, ntile ORDER BY grp, ntile;
CREATE TEMP TABLE words AS SELECT DISTINCT substr(name, 13) AS w FROM item;
SELECT group_concat(w, ' ') FROM (SELECT w FROM words ORDER BY w);
SELECT json_group_array(json_object('id', id, 'p', price)) FROM (SELECT id, price FROM item WHERE id < 40 ORDER BY id);
VACUUM;
PRAGMA integrity_check;
