"""The registry's schema: the classic ``db_tars`` tables it reads and writes (same names, columns and types as
TarsFramework creates them, so the classic TarsWeb can read what we write) plus two of its own for change
propagation between replicas.

Columns the registry adds to a classic ``t_server_conf`` when missing: ``grid_flag`` and ``metrics_port`` (as
K8STARS does) and ``last_heartbeat`` (per-server heartbeats, so one pod's heartbeat never keeps another alive).
Version 1 is what the registry created before versions were recorded; a new change is a new step at the end.
"""

from __future__ import annotations

import logging

from k8stars.sql import Schema, Step, Tx
from k8stars.sql.tables import CONFIG_FILES_MYSQL, CONFIG_FILES_SQLITE

log = logging.getLogger("k8stars.registry")

# t_k8stars_registry_seq holds one row whose seq every state-changing transaction increments first: the row lock
# serializes those transactions, so seq order is commit order and a replica that has read seq N has seen every
# change up to N in t_k8stars_registry_changes.
MYSQL_TABLES = [
    """CREATE TABLE IF NOT EXISTS t_server_conf (
  id int(11) NOT NULL AUTO_INCREMENT,
  application varchar(128) DEFAULT '',
  server_name varchar(128) DEFAULT '',
  node_group varchar(50) NOT NULL DEFAULT '',
  node_name varchar(50) NOT NULL DEFAULT '',
  registry_timestamp datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  base_path varchar(128) DEFAULT '',
  exe_path varchar(128) NOT NULL DEFAULT '',
  template_name varchar(128) NOT NULL DEFAULT '',
  bak_flag int(11) NOT NULL DEFAULT 0,
  setting_state enum('active','inactive') NOT NULL DEFAULT 'inactive',
  present_state enum('active','inactive','activating','deactivating','destroyed') NOT NULL DEFAULT 'inactive',
  process_id int(11) NOT NULL DEFAULT 0,
  patch_version varchar(128) NOT NULL DEFAULT '',
  patch_time datetime NOT NULL DEFAULT '1970-01-02 00:00:00',
  patch_user varchar(128) NOT NULL DEFAULT '',
  tars_version varchar(128) NOT NULL DEFAULT '',
  posttime datetime DEFAULT NULL,
  lastuser varchar(30) DEFAULT NULL,
  server_type enum('tars_cpp','not_tars','tars_java','tars_nodejs','tars_php','tars_go') DEFAULT NULL,
  start_script_path varchar(128) DEFAULT NULL,
  stop_script_path varchar(128) DEFAULT NULL,
  monitor_script_path varchar(128) DEFAULT NULL,
  enable_group char(1) DEFAULT 'N',
  enable_set char(1) NOT NULL DEFAULT 'N',
  set_name varchar(16) DEFAULT NULL,
  set_area varchar(16) DEFAULT NULL,
  set_group varchar(64) DEFAULT NULL,
  ip_group_name varchar(64) DEFAULT NULL,
  profile text,
  config_center_port int(11) NOT NULL DEFAULT 0,
  async_thread_num int(11) DEFAULT 3,
  server_important_type enum('0','1','2','3','4','5') DEFAULT '0',
  remote_log_reserve_time varchar(32) NOT NULL DEFAULT '65',
  remote_log_compress_time varchar(32) NOT NULL DEFAULT '2',
  remote_log_type int(1) NOT NULL DEFAULT 0,
  grid_flag varchar(16) NOT NULL DEFAULT 'NORMAL',
  metrics_port int(11) DEFAULT 0,
  last_heartbeat datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY application (application, server_name, node_name),
  KEY node_name (node_name),
  KEY index_regtime (registry_timestamp),
  KEY k8stars_heartbeat (last_heartbeat)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_adapter_conf (
  id int(11) NOT NULL AUTO_INCREMENT,
  application varchar(50) DEFAULT '',
  server_name varchar(128) DEFAULT '',
  node_name varchar(50) DEFAULT '',
  adapter_name varchar(100) DEFAULT '',
  registry_timestamp datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  thread_num int(11) DEFAULT 1,
  endpoint varchar(128) DEFAULT '',
  max_connections int(11) DEFAULT 1000,
  allow_ip varchar(255) NOT NULL DEFAULT '',
  servant varchar(128) DEFAULT '',
  queuecap int(11) DEFAULT NULL,
  queuetimeout int(11) DEFAULT NULL,
  posttime datetime DEFAULT NULL,
  lastuser varchar(30) DEFAULT NULL,
  protocol varchar(64) DEFAULT 'tars',
  handlegroup varchar(64) DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY application (application, server_name, node_name, adapter_name),
  KEY adapter_conf_endpoint_index (endpoint),
  KEY index_regtime (registry_timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_node_info (
  id int(11) NOT NULL AUTO_INCREMENT,
  node_name varchar(128) DEFAULT '',
  node_obj varchar(128) DEFAULT '',
  endpoint_ip varchar(16) DEFAULT '',
  endpoint_port int(11) DEFAULT 0,
  data_dir varchar(128) DEFAULT '',
  load_avg1 float DEFAULT 0,
  load_avg5 float DEFAULT 0,
  load_avg15 float DEFAULT 0,
  last_reg_time datetime DEFAULT '1970-01-02 00:00:00',
  last_heartbeat datetime DEFAULT '1970-01-02 00:00:00',
  setting_state enum('active','inactive') DEFAULT 'inactive',
  present_state enum('active','inactive') DEFAULT 'inactive',
  tars_version varchar(128) NOT NULL DEFAULT '',
  template_name varchar(128) NOT NULL DEFAULT '',
  modify_time datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  group_id int(11) DEFAULT -1,
  label text,
  PRIMARY KEY (id),
  UNIQUE KEY node_name (node_name),
  KEY indx_node_info (last_heartbeat)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    CONFIG_FILES_MYSQL,
    """CREATE TABLE IF NOT EXISTS t_group_priority (
  id int(11) NOT NULL AUTO_INCREMENT,
  name varchar(128) DEFAULT '',
  group_list text,
  list_order int(11) DEFAULT 0,
  station varchar(128) NOT NULL DEFAULT '',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_server_group_rule (
  group_id int(10) unsigned NOT NULL AUTO_INCREMENT,
  ip_order enum('allow_denny','denny_allow') NOT NULL DEFAULT 'denny_allow',
  allow_ip_rule text,
  denny_ip_rule text,
  lastuser varchar(50) DEFAULT NULL,
  modify_time datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  group_name varchar(128) DEFAULT '',
  group_name_cn varchar(128) DEFAULT '',
  PRIMARY KEY (group_id),
  UNIQUE KEY group_name_index (group_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_k8stars_registry_seq (
  id int(11) NOT NULL,
  seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS t_k8stars_registry_changes (
  seq bigint NOT NULL,
  application varchar(128) NOT NULL,
  server_name varchar(128) NOT NULL,
  node_name varchar(50) NOT NULL,
  changed_at datetime(3) NOT NULL,
  PRIMARY KEY (seq, application, server_name, node_name),
  KEY k8stars_changed_at (changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    "INSERT INTO t_k8stars_registry_seq (id, seq) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id",
]

MYSQL_ADDED_COLUMNS = {
    "grid_flag": ["ALTER TABLE t_server_conf ADD COLUMN grid_flag varchar(16) NOT NULL DEFAULT 'NORMAL'"],
    "metrics_port": ["ALTER TABLE t_server_conf ADD COLUMN metrics_port int(11) DEFAULT 0"],
    "last_heartbeat": [
        "ALTER TABLE t_server_conf ADD COLUMN last_heartbeat datetime(3) DEFAULT NULL",
        "ALTER TABLE t_server_conf ADD INDEX k8stars_heartbeat (last_heartbeat)",
    ],
}

_STATE_CHECK = "CHECK (present_state IN ('active','inactive','activating','deactivating','destroyed'))"

# The same tables for the embedded store: SQLite has no enums or ON UPDATE, so states are CHECKed and every
# timestamp is written by the registry ('YYYY-MM-DD HH:MM:SS.fff', UTC, which sorts as text).
SQLITE_TABLES = [
    f"""CREATE TABLE IF NOT EXISTS t_server_conf (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application TEXT NOT NULL DEFAULT '',
  server_name TEXT NOT NULL DEFAULT '',
  node_group TEXT NOT NULL DEFAULT '',
  node_name TEXT NOT NULL DEFAULT '',
  registry_timestamp TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  base_path TEXT DEFAULT '',
  exe_path TEXT NOT NULL DEFAULT '',
  template_name TEXT NOT NULL DEFAULT '',
  bak_flag INTEGER NOT NULL DEFAULT 0,
  setting_state TEXT NOT NULL DEFAULT 'inactive' CHECK (setting_state IN ('active','inactive')),
  present_state TEXT NOT NULL DEFAULT 'inactive' {_STATE_CHECK},
  process_id INTEGER NOT NULL DEFAULT 0,
  patch_version TEXT NOT NULL DEFAULT '',
  patch_time TEXT NOT NULL DEFAULT '1970-01-02 00:00:00',
  patch_user TEXT NOT NULL DEFAULT '',
  tars_version TEXT NOT NULL DEFAULT '',
  posttime TEXT DEFAULT NULL,
  lastuser TEXT DEFAULT NULL,
  server_type TEXT DEFAULT NULL,
  start_script_path TEXT DEFAULT NULL,
  stop_script_path TEXT DEFAULT NULL,
  monitor_script_path TEXT DEFAULT NULL,
  enable_group TEXT DEFAULT 'N',
  enable_set TEXT NOT NULL DEFAULT 'N',
  set_name TEXT DEFAULT NULL,
  set_area TEXT DEFAULT NULL,
  set_group TEXT DEFAULT NULL,
  ip_group_name TEXT DEFAULT NULL,
  profile TEXT,
  config_center_port INTEGER NOT NULL DEFAULT 0,
  async_thread_num INTEGER DEFAULT 3,
  server_important_type TEXT DEFAULT '0',
  remote_log_reserve_time TEXT NOT NULL DEFAULT '65',
  remote_log_compress_time TEXT NOT NULL DEFAULT '2',
  remote_log_type INTEGER NOT NULL DEFAULT 0,
  grid_flag TEXT NOT NULL DEFAULT 'NORMAL',
  metrics_port INTEGER DEFAULT 0,
  last_heartbeat TEXT DEFAULT NULL,
  UNIQUE (application, server_name, node_name)
)""",
    "CREATE INDEX IF NOT EXISTS t_server_conf_node ON t_server_conf (node_name)",
    """CREATE TABLE IF NOT EXISTS t_adapter_conf (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application TEXT NOT NULL DEFAULT '',
  server_name TEXT NOT NULL DEFAULT '',
  node_name TEXT NOT NULL DEFAULT '',
  adapter_name TEXT NOT NULL DEFAULT '',
  registry_timestamp TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  thread_num INTEGER DEFAULT 1,
  endpoint TEXT DEFAULT '',
  max_connections INTEGER DEFAULT 1000,
  allow_ip TEXT NOT NULL DEFAULT '',
  servant TEXT DEFAULT '',
  queuecap INTEGER DEFAULT NULL,
  queuetimeout INTEGER DEFAULT NULL,
  posttime TEXT DEFAULT NULL,
  lastuser TEXT DEFAULT NULL,
  protocol TEXT DEFAULT 'tars',
  handlegroup TEXT DEFAULT '',
  UNIQUE (application, server_name, node_name, adapter_name)
)""",
    """CREATE TABLE IF NOT EXISTS t_node_info (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node_name TEXT NOT NULL DEFAULT '' UNIQUE,
  node_obj TEXT DEFAULT '',
  endpoint_ip TEXT DEFAULT '',
  endpoint_port INTEGER DEFAULT 0,
  data_dir TEXT DEFAULT '',
  load_avg1 REAL DEFAULT 0,
  load_avg5 REAL DEFAULT 0,
  load_avg15 REAL DEFAULT 0,
  last_reg_time TEXT DEFAULT '1970-01-02 00:00:00',
  last_heartbeat TEXT DEFAULT '1970-01-02 00:00:00',
  setting_state TEXT DEFAULT 'inactive' CHECK (setting_state IN ('active','inactive')),
  present_state TEXT DEFAULT 'inactive' CHECK (present_state IN ('active','inactive')),
  tars_version TEXT NOT NULL DEFAULT '',
  template_name TEXT NOT NULL DEFAULT '',
  modify_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  group_id INTEGER DEFAULT -1,
  label TEXT
)""",
    CONFIG_FILES_SQLITE,
    """CREATE TABLE IF NOT EXISTS t_group_priority (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT DEFAULT '',
  group_list TEXT,
  list_order INTEGER DEFAULT 0,
  station TEXT NOT NULL DEFAULT ''
)""",
    """CREATE TABLE IF NOT EXISTS t_server_group_rule (
  group_id INTEGER PRIMARY KEY AUTOINCREMENT,
  ip_order TEXT NOT NULL DEFAULT 'denny_allow',
  allow_ip_rule TEXT,
  denny_ip_rule TEXT,
  lastuser TEXT DEFAULT NULL,
  modify_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  group_name TEXT DEFAULT '' UNIQUE,
  group_name_cn TEXT DEFAULT ''
)""",
    "CREATE TABLE IF NOT EXISTS t_k8stars_registry_seq (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL DEFAULT 0)",
    """CREATE TABLE IF NOT EXISTS t_k8stars_registry_changes (
  seq INTEGER NOT NULL,
  application TEXT NOT NULL,
  server_name TEXT NOT NULL,
  node_name TEXT NOT NULL,
  changed_at TEXT NOT NULL,
  PRIMARY KEY (seq, application, server_name, node_name)
)""",
    "CREATE INDEX IF NOT EXISTS t_k8stars_changes_at ON t_k8stars_registry_changes (changed_at)",
    "INSERT OR IGNORE INTO t_k8stars_registry_seq (id, seq) VALUES (1, 0)",
]

# after the added columns exist (an older file may not have last_heartbeat yet)
SQLITE_INDEXES = ["CREATE INDEX IF NOT EXISTS t_server_conf_heartbeat ON t_server_conf (last_heartbeat)"]

SQLITE_ADDED_COLUMNS = {
    "grid_flag": ["ALTER TABLE t_server_conf ADD COLUMN grid_flag TEXT NOT NULL DEFAULT 'NORMAL'"],
    "metrics_port": ["ALTER TABLE t_server_conf ADD COLUMN metrics_port INTEGER DEFAULT 0"],
    "last_heartbeat": ["ALTER TABLE t_server_conf ADD COLUMN last_heartbeat TEXT DEFAULT NULL"],
}

_ADDED_COLUMNS = {"mysql": MYSQL_ADDED_COLUMNS, "sqlite": SQLITE_ADDED_COLUMNS}
_LATE_INDEXES = {"mysql": [], "sqlite": SQLITE_INDEXES}


async def _classic_columns(tx: Tx) -> None:
    """A ``t_server_conf`` that TarsFramework (or K8STARS) created lacks some of the registry's columns."""
    have = await tx.columns("t_server_conf")
    for column, statements in _ADDED_COLUMNS[tx.dialect.name].items():
        if column not in have:
            log.info("adding column t_server_conf.%s", column)
            for statement in statements:
                await tx.execute(statement)
    for statement in _LATE_INDEXES[tx.dialect.name]:
        await tx.execute(statement)


SCHEMA = Schema("registry", [Step(sqlite=SQLITE_TABLES, mysql=MYSQL_TABLES, run=_classic_columns)])
