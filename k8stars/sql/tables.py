"""Tables that more than one store declares, in one place: the registry's schema has the whole classic ``db_tars``
and the config service's has the config tables of it, so on one MySQL database they meet."""

from __future__ import annotations

# db_tars.t_config_files as TarsFramework declares it: the registry's schema has it (a whole db_tars), the config
# service reads and writes it.
CONFIG_FILES_MYSQL = """CREATE TABLE IF NOT EXISTS t_config_files (
  id int(11) NOT NULL AUTO_INCREMENT,
  server_name varchar(128) DEFAULT '',
  set_name varchar(16) NOT NULL DEFAULT '',
  set_area varchar(16) NOT NULL DEFAULT '',
  set_group varchar(16) NOT NULL DEFAULT '',
  host varchar(20) NOT NULL DEFAULT '',
  filename varchar(128) DEFAULT NULL,
  config longtext,
  posttime datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lastuser varchar(50) DEFAULT NULL,
  level int(11) DEFAULT 2,
  config_flag int(10) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY application (server_name, filename, host, level, set_name, set_area, set_group)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"""
CONFIG_FILES_SQLITE = """CREATE TABLE IF NOT EXISTS t_config_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  server_name TEXT DEFAULT '',
  set_name TEXT NOT NULL DEFAULT '',
  set_area TEXT NOT NULL DEFAULT '',
  set_group TEXT NOT NULL DEFAULT '',
  host TEXT NOT NULL DEFAULT '',
  filename TEXT DEFAULT NULL,
  config TEXT,
  posttime TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lastuser TEXT DEFAULT NULL,
  level INTEGER DEFAULT 2,
  config_flag INTEGER NOT NULL DEFAULT 0,
  UNIQUE (server_name, filename, host, level, set_name, set_area, set_group)
)"""
