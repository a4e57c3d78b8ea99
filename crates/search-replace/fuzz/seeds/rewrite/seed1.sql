INSERT INTO t VALUES (1,'https://a.test','a:1:{s:3:\"url\";s:14:\"https://a.test\";}');
