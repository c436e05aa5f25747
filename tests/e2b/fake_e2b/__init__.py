"""A test E2B server: control plane, code interpreter and envd files on one
port, with fault injection. Entry point: tests/e2b/fake_e2b_server.py."""
