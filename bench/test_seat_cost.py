"""seat_cost.py against today's library and store.c: it reads every entry of
store.c's function table, and its calls are taken by src/store/lua/usher.lua
(it stops at the first error or refusal, so a call store.c changed fails
here). Starts one redis-server (part of `make unit`, under a second)."""

import json
import os
import re
import subprocess
import sys
import unittest

import seat_cost

LIBRARY = os.path.join(seat_cost.ROOT, "src", "store", "lua", "usher.lua")


class SeatCost(unittest.TestCase):
    def test_every_function_of_store_c_has_its_keys(self):
        with open(seat_cost.STORE_C) as f:
            entries = re.findall(r'^\s*\[FN_\w+\]', f.read(), re.M)
        keys = seat_cost.store_keys()
        self.assertEqual(len(keys), len(entries))
        self.assertEqual(keys["usher_rate_take"], [])
        self.assertIn("stage_endpoints", keys["usher_stage_add"])

    def test_runs_against_todays_library(self):
        out = subprocess.run([sys.executable, os.path.join(seat_cost.ROOT, "bench", "seat_cost.py"), LIBRARY,
                              "3", "60", "30"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        with open(LIBRARY) as f:
            version = int(re.search(r"^local VERSION = (\d+)", f.read(), re.M).group(1))
        self.assertEqual(got["library_version"], version)
        self.assertEqual(got["heartbeats"], 30)   # the first stage holds a third of 90 seats
        for k in ("seat_us", "heartbeat_us", "heartbeat_batch20_us_each"):
            self.assertGreater(got[k], 0)


if __name__ == "__main__":
    unittest.main()
