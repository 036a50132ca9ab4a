#!/usr/bin/env python3
"""Recompute a store's X/Z report figures from uploaded JSON Lines objects alone.

An independent reader for issue #8: it knows nothing of the hub but the object format
(docs/S3_FORMAT.md) and the report rules (src/core/report.h), and prints the figures in
exactly the layout of core::ReportFiguresJson, so a test can compare them byte for byte
with the hub's Z report. Python 3 standard library only; money is exact (integers in
minor units, parsed with decimal).

Usage:
  recompute_report.py PATH... [--from-seq N] [--to-seq M] [--currency USD]
  recompute_report.py PATH... --z N
  recompute_report.py PATH... --check-z

PATH is a folder (searched recursively for *.jsonl.gz and *.jsonl, e.g. the local-folder
sink or `aws s3 cp --recursive` of the bucket's sales prefix) or an object file.

Without --z / --check-z, the range is --from-seq..--to-seq; when neither is given it is
the open day: every entry after the last z_report line (all entries when there is none),
as GET /v1/reports/x computes it. The currency is --currency, else the one of the first
entry in the range that has one, else USD. The figures are printed on one line.

--z N recomputes Z report N over its own range (first_seq..last_seq) and currency,
prints the recomputed figures and exits 1 when they differ from the figures the Z report
line carries. --check-z does so for every Z report found and prints one line per report.

Exit status: 0 ok, 1 a mismatch (or no Z report with --check-z / that number with --z),
2 unreadable input (bad gzip or JSON, a seq seen twice with different content, a line
that is not an entry).
"""

import argparse
import decimal
import gzip
import json
import os
import sys

# ISO 4217 minor units that are not 2 (the hub's table, src/core/currency.cc, agrees).
MINOR_UNITS = {
    **{c: 0 for c in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()},
    **{c: 3 for c in "BHD IQD JOD KWD LYD OMR TND".split()},
    **{c: 4 for c in "CLF UYW".split()},
}
SALE_TYPES = ("sale", "refund", "void")
# payment_authorization (issue #9) moves no money in the store: counted in `entries`
# (and in other_currency_entries when in another currency), nothing else.
EVENT_TYPES = ("drawer_open", "cash_in", "cash_out", "drawer_close", "z_report",
               "payment_authorization")


class InputError(Exception):
    pass


def minor_units(currency):
    return MINOR_UNITS.get(currency, 2)


def scaled(text, places, what):
    """A decimal string ("3.50") as an exact integer of 10^-places units."""
    if not isinstance(text, str):
        raise InputError("%s is not a decimal string: %r" % (what, text))
    try:
        value = decimal.Decimal(text) * (decimal.Decimal(10) ** places)
        if not value.is_finite() or value != value.to_integral_value():
            raise InputError("%s is not a decimal with at most %d places: %r"
                             % (what, places, text))
    except decimal.InvalidOperation:
        raise InputError("%s is not a decimal: %r" % (what, text))
    return int(value)


def fmt(value, places, trim=False):
    """core::AppendDecimal: sign, integer part, '.', exactly `places` digits (trailing
    zeros and the point dropped when trim)."""
    sign = "-" if value < 0 else ""
    mag = -value if value < 0 else value
    int_part, frac = divmod(mag, 10 ** places)
    digits = places
    if trim:
        while digits > 0 and frac % 10 == 0:
            frac //= 10
            digits -= 1
    text = sign + str(int_part)
    if digits > 0:
        text += "." + str(frac).rjust(digits, "0")
    return text


def key_bytes(text):
    """std::map<std::string, ...> order: unsigned bytes of the UTF-8 text."""
    return text.encode("utf-8")


def object_files(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                for name in names:
                    if name.endswith(".jsonl.gz") or name.endswith(".jsonl"):
                        files.append(os.path.join(root, name))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise InputError("no such file or folder: %s" % path)
    return sorted(files)


def read_entries(paths):
    """Every line of every object, by seq (a seq seen twice must be the same line)."""
    by_seq = {}
    for path in object_files(paths):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    raw = f.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
            text = raw.decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise InputError("%s: %s" % (path, e))
        for number, line in enumerate(text.split("\n"), 1):
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError as e:
                raise InputError("%s:%d: not JSON: %s" % (path, number, e))
            if (not isinstance(entry, dict) or not isinstance(entry.get("seq"), int)
                    or entry.get("type") not in SALE_TYPES + EVENT_TYPES):
                raise InputError("%s:%d: not a journal entry" % (path, number))
            seen = by_seq.get(entry["seq"])
            if seen is not None and seen != entry:
                raise InputError("%s:%d: seq %d seen twice with different content"
                                 % (path, number, entry["seq"]))
            by_seq[entry["seq"]] = entry
    return [by_seq[seq] for seq in sorted(by_seq)]


def totals(count=0, subtotal=0, tax=0, total=0):
    return {"count": count, "subtotal": subtotal, "tax": tax, "total": total}


def compute(entries, currency):
    """core::ComputeReport over `entries` (in seq order), as plain integers."""
    minor = minor_units(currency)

    def money(entry, name, obj=None):
        return scaled((obj if obj is not None else entry)[name], minor,
                      "seq %d %s" % (entry["seq"], name))

    r = {
        "first_seq": 0, "last_seq": 0, "entries": 0,
        "sales": totals(), "refunds": totals(), "voids": totals(),
        "by_method": {}, "by_tax_rate": {}, "terminals": {}, "drawers": [],
        "cash_without_drawer": {}, "offline_count": 0, "offline_amount": 0,
        "cash_in": 0, "cash_out": 0, "z_reports": 0, "other_currency": 0,
    }
    open_session = {}  # terminal -> index in drawers

    def method(name):
        return r["by_method"].setdefault(
            name, {"sales_count": 0, "collected": 0, "refunds_count": 0, "returned": 0})

    def loose(terminal, delta):
        r["cash_without_drawer"][terminal] = r["cash_without_drawer"].get(terminal, 0) + delta

    for e in entries:
        seq = e["seq"]
        if r["first_seq"] == 0:
            r["first_seq"] = seq
        r["last_seq"] = seq
        r["entries"] += 1
        kind = e["type"]
        if kind in SALE_TYPES:
            if e.get("currency") != currency:
                r["other_currency"] += 1
                continue
            terminal = e["terminal_id"]
            term = r["terminals"].setdefault(
                terminal, {"first_receipt": "", "last_receipt": "", "sales": 0, "refunds": 0,
                           "voids": 0})
            if term["first_receipt"] == "":
                term["first_receipt"] = e["receipt_no"]
            term["last_receipt"] = e["receipt_no"]
            is_sale = kind == "sale"
            group = {"sale": "sales", "refund": "refunds", "void": "voids"}[kind]
            term[group] += 1
            t = r[group]
            t["count"] += 1
            t["subtotal"] += money(e, "subtotal")
            t["tax"] += money(e, "tax")
            t["total"] += money(e, "total")
            sign = 1 if is_sale else -1
            for line in e["lines"]:
                rate = scaled(line["tax_rate"], 6, "seq %d tax_rate" % seq)
                rt = r["by_tax_rate"].setdefault(rate, {"net": 0, "tax": 0})
                rt["net"] += sign * money(e, "net", line)
                rt["tax"] += sign * money(e, "tax", line)
            cash = 0
            for p in e["payments"]:
                amount = money(e, "amount", p)
                m = method(p["method"])
                if p["method"] == "cash":
                    cash += amount
                if is_sale:
                    m["sales_count"] += 1
                    m["collected"] += amount
                    if p["method"] == "card" and p.get("offline") is True:
                        r["offline_count"] += 1
                        r["offline_amount"] += amount
                else:
                    m["refunds_count"] += 1
                    m["returned"] += amount
            if is_sale:
                change = money(e, "change")
                if change > 0:
                    method("cash")["collected"] -= change
                delta = cash - change
            else:
                delta = -cash
            if delta != 0:
                at = open_session.get(terminal)
                if at is None:
                    loose(terminal, delta)
                elif delta > 0:
                    r["drawers"][at]["cash_sales"] += delta
                else:
                    r["drawers"][at]["cash_refunds"] += -delta
            continue

        if kind == "z_report":
            r["z_reports"] += 1
            continue
        if e.get("currency") != currency:
            r["other_currency"] += 1
            continue
        terminal = e.get("terminal_id", "")
        if kind == "drawer_open":
            r["drawers"].append({"terminal_id": terminal, "opened_seq": seq, "closed_seq": 0,
                                 "float": money(e, "amount"), "cash_sales": 0,
                                 "cash_refunds": 0, "cash_in": 0, "cash_out": 0,
                                 "counted": None})
            open_session[terminal] = len(r["drawers"]) - 1
        elif kind in ("cash_in", "cash_out"):
            amount = money(e, "amount")
            r[kind] += amount
            at = open_session.get(terminal)
            if at is None:
                loose(terminal, amount if kind == "cash_in" else -amount)
            else:
                r["drawers"][at][kind] += amount
        elif kind == "drawer_close":
            at = open_session.pop(terminal, None)
            if at is not None:
                r["drawers"][at]["closed_seq"] = seq
                r["drawers"][at]["counted"] = money(e, "counted")
    return r


def figures_json(r, currency):
    """core::ReportFiguresJson's layout (compact, keys in its order)."""
    minor = minor_units(currency)

    def m(v):
        return fmt(v, minor)

    def tot(t):
        return {"count": t["count"], "subtotal": m(t["subtotal"]), "tax": m(t["tax"]),
                "total": m(t["total"])}

    net = {"count": r["sales"]["count"]}
    for k in ("subtotal", "tax", "total"):
        net[k] = r["sales"][k] - r["refunds"][k] - r["voids"][k]
    out = {
        "currency": currency,
        "first_seq": r["first_seq"],
        "last_seq": r["last_seq"],
        "entries": r["entries"],
        "sales": tot(r["sales"]),
        "refunds": tot(r["refunds"]),
        "voids": tot(r["voids"]),
        "net": tot(net),
        "by_method": [
            {"method": name, "sales_count": v["sales_count"], "collected": m(v["collected"]),
             "refunds_count": v["refunds_count"], "returned": m(v["returned"]),
             "net": m(v["collected"] - v["returned"])}
            for name, v in sorted(r["by_method"].items(), key=lambda kv: key_bytes(kv[0]))],
        "by_tax_rate": [
            {"rate": fmt(rate, 6, trim=True), "net": m(v["net"]), "tax": m(v["tax"])}
            for rate, v in sorted(r["by_tax_rate"].items())],
        "terminals": [
            {"terminal_id": tid, "first_receipt": v["first_receipt"],
             "last_receipt": v["last_receipt"], "sales": v["sales"], "refunds": v["refunds"],
             "voids": v["voids"]}
            for tid, v in sorted(r["terminals"].items(), key=lambda kv: key_bytes(kv[0]))],
    }
    drawers = []
    for d in r["drawers"]:
        expected = d["float"] + d["cash_sales"] - d["cash_refunds"] + d["cash_in"] - d["cash_out"]
        j = {"terminal_id": d["terminal_id"], "opened_seq": d["opened_seq"]}
        if d["closed_seq"] != 0:
            j["closed_seq"] = d["closed_seq"]
        j.update({"float": m(d["float"]), "cash_sales": m(d["cash_sales"]),
                  "cash_refunds": m(d["cash_refunds"]), "cash_in": m(d["cash_in"]),
                  "cash_out": m(d["cash_out"]), "expected": m(expected)})
        if d["counted"] is not None:
            j["counted"] = m(d["counted"])
            j["variance"] = m(d["counted"] - expected)
        drawers.append(j)
    out["drawers"] = drawers
    out["cash_without_drawer"] = [
        {"terminal_id": tid, "amount": m(v)}
        for tid, v in sorted(r["cash_without_drawer"].items(), key=lambda kv: key_bytes(kv[0]))]
    out["offline_card"] = {"count": r["offline_count"], "amount": m(r["offline_amount"])}
    out["cash_in"] = m(r["cash_in"])
    out["cash_out"] = m(r["cash_out"])
    out["z_reports"] = r["z_reports"]
    out["other_currency_entries"] = r["other_currency"]
    return dumps(out)


def dumps(value):
    # nlohmann::json's compact dump: no spaces, UTF-8 kept, the same escapes.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def in_range(entries, first, last):
    return [e for e in entries if first <= e["seq"] <= last]


def check_z(entries, z):
    """(recomputed figures text, stored figures text) of one z_report line."""
    stored = z.get("figures")
    if not isinstance(stored, dict):
        raise InputError("Z report at seq %d has no figures" % z["seq"])
    currency = stored.get("currency") or z.get("currency")
    got = figures_json(compute(in_range(entries, z["first_seq"], z["last_seq"]), currency),
                       currency)
    return got, dumps(stored)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--from-seq", type=int)
    parser.add_argument("--to-seq", type=int)
    parser.add_argument("--currency")
    parser.add_argument("--z", type=int, help="recompute Z report N and compare")
    parser.add_argument("--check-z", action="store_true", help="check every Z report")
    args = parser.parse_args(argv)
    try:
        entries = read_entries(args.paths)
        zs = [e for e in entries if e["type"] == "z_report"]
        if args.check_z or args.z is not None:
            chosen = zs if args.check_z else [z for z in zs if z.get("z_number") == args.z]
            if not chosen:
                print("no Z report%s in the objects" %
                      ("" if args.check_z else " number %d" % args.z), file=sys.stderr)
                return 1
            bad = 0
            for z in chosen:
                got, stored = check_z(entries, z)
                same = got == stored
                bad += not same
                if args.check_z:
                    print("Z%s seq %d..%d: %s" % (z.get("z_number"), z["first_seq"], z["last_seq"],
                                                  "ok" if same else "MISMATCH"))
                else:
                    print(got)
                if not same:
                    print("Z%s recomputed: %s\nZ%s stored:     %s" %
                          (z.get("z_number"), got, z.get("z_number"), stored), file=sys.stderr)
            return 1 if bad else 0
        if args.from_seq is None and args.to_seq is None:
            first = zs[-1]["seq"] + 1 if zs else 0
            last = entries[-1]["seq"] if entries else 0
        else:
            first = args.from_seq if args.from_seq is not None else 0
            last = args.to_seq if args.to_seq is not None else (
                entries[-1]["seq"] if entries else 0)
        chosen = in_range(entries, first, last)
        currency = args.currency
        if not currency:
            currency = next((e["currency"] for e in chosen if e.get("currency")), "USD")
        print(figures_json(compute(chosen, currency), currency))
        return 0
    except (InputError, KeyError, TypeError) as e:
        print("recompute_report: %s" % (e if isinstance(e, InputError) else
                                        "an entry lacks a member or has the wrong type: %r" % e),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
