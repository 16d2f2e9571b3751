-- The feed health dashboard shows the requests the API refused per supplier and key (issue 13, point 6):
-- Grafana's read-only role reads them. Key prefixes are the public part of a key; the hashes stay unreadable.
GRANT SELECT ON feed_requests TO baogong_grafana;
