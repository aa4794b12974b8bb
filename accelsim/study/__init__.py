"""Studies: small declarative TOML files (`studies/*.toml`) naming a runner that sweeps the model and
returns an HTML `Report`. See `accelsim.study.run` for the file format and the runner contract."""
