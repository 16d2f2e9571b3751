-- Two relations the Grafana panels read that 0016's grants missed: which business
-- types carry which necessity (the circle detail's silent outlets, the feed
-- health's reporting rate) and the stream offsets (the pipeline dashboard's
-- partitions). Neither holds a key or anything a supplier sent.
GRANT SELECT ON business_type_necessities, stream_offsets TO baogong_grafana;
