#!/bin/bash
# Guest side: run probe.py with the repo's venv (installed as /usr/local/sbin/v2vm-probe).
cd /repo && exec /repo/.venv/bin/python /usr/local/lib/v2vm/probe.py
