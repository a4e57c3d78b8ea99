-- c'
/*!40101 SET NAMES 'x' */;
INSERT INTO `a'` VALUES ('O:8:\"stdClass\":1:{s:7:\"\0*\0prop\";s:16:\"http://a.test/x\";}',X'61',"q""");
