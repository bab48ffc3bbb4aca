"""The model zoo recipes (TOML), installed as package data of ``wrn_deploy.models``."""
