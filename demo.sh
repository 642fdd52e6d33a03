#!/usr/bin/env bash
# make demo: a whole store on this machine. One central, the store's
# controller, two lanes, each lane with a simulated scanner and card reader on
# pseudo-terminals (lane 2 talks to the controller first); households
# enrolled and recognised in the lanes, an offer accepted on a phone and
# redeemed at the lane, pos-agent doctor, receipt links, lanes played (one
# while central is down), histories and the store's report printed; a vendor
# flow (a delivery delayed, the installer's slots offered, one picked and
# booked) with two fake vendor backends. Replies are summed up in one line
# each for people, never printed as raw JSON.
# Everything lives under demo/ and every process started here is stopped.
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${BUILD:-build}
BIN="$PWD/$BUILD/bin"
D="$PWD/demo"
PIDS=()

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }
die()  { printf 'demo: %s\n' "$*" >&2; exit 1; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for DESC SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
	local desc=$1 secs=$2; shift 2
	local n=$((secs * 10))
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ "$n" -gt 0 ] || die "timed out waiting for $desc"
		sleep 0.1
	done
}

central_up() {
	curl -sf --cacert "$D/central/ca.crt" "https://127.0.0.1:$PORT/v1/health"
}

start_central() {
	"$BIN/pos-central" serve -c "$D/central/central.conf" >>"$D/central.log" 2>&1 &
	CENTRAL_PID=$!
	PIDS+=("$CENTRAL_PID")
	wait_for "central to answer" 10 central_up
}

store_up() {
	curl -sf --cacert "$D/store/ca.crt" "https://127.0.0.1:$SPORT/v1/health"
}

start_store() {
	"$BIN/pos-store" run -c "$D/store/store.conf" >>"$D/store.log" 2>&1 &
	PIDS+=("$!")
	wait_for "the store controller to answer" 10 store_up
}

store_drained() {
	curl -sf --cacert "$D/store/ca.crt" "https://127.0.0.1:$SPORT/metrics" |
		grep -qx 'pos_store_queue_depth 0'
}

stop_central() {
	kill -TERM "$CENTRAL_PID"
	wait "$CENTRAL_PID" 2>/dev/null || true
}

# start_device LANE NAME KIND PROFILE: a pos-hwsim fed through a FIFO, with
# a stable symlink that terminal.conf names.
start_device() {
	local lane=$1 name=$2 kind=$3 profile=$4
	local dir="$D/$lane"
	mkfifo "$dir/$name.in"
	"$BIN/pos-hwsim" "$kind" --profile "$profile" --link "$dir/$name.tty" \
		<"$dir/$name.in" >"$dir/$name.sim.log" 2>&1 &
	PIDS+=("$!")
	# Hold the FIFO open for writing for the whole demo.
	eval "exec {fd}>\"$dir/$name.in\""
	eval "FD_${lane}_${name}=$fd"
	wait_for "$lane $name to appear" 5 test -e "$dir/$name.tty"
	cat >>"$dir/terminal.conf" <<EOF

[device.$name]
role = $kind
port = $dir/$name.tty
profile = $profile
EOF
}

# emit LANE NAME LINE...: one code or swipe per line to a simulated device.
emit() {
	local lane=$1 name=$2; shift 2
	local var="FD_${lane}_${name}" line
	for line in "$@"; do
		printf '%s\n' "$line" >&"${!var}"
		sleep 0.05
	done
}

ctl() {
	local lane=$1; shift
	"$BIN/pos-agent" ctl -c "$D/$lane/terminal.conf" "$@"
}

start_agent() {
	local lane=$1
	"$BIN/pos-agent" run -c "$D/$lane/terminal.conf" >"$D/$lane/agent.log" 2>&1 &
	PIDS+=("$!")
	wait_for "$lane agent" 10 ctl "$lane" status
	wait_for "$lane devices" 10 bash -c "'$BIN/pos-agent' ctl -c '$D/$lane/terminal.conf' status | grep -q '\"up\":true' && ! '$BIN/pos-agent' ctl -c '$D/$lane/terminal.conf' status | grep -q '\"up\":false'"
}

spool_empty() {
	ctl "$1" status | grep -q '"spooled":0'
}

# lane_total LANE: totals the open basket; one line for people, the reply
# kept in TOTAL_JSON.
lane_total() {
	TOTAL_JSON=$(ctl "$1" total)
	echo "$TOTAL_JSON" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if not r.get("ok"):
    print("   total refused: %s (%s)" % (r.get("error"), r.get("detail", "")))
    sys.exit(0)
print("   total: basket %s, %d line(s), %d unit(s), safe in the lane spool" % (r["txn"], r["items"], r["units"]))
if r.get("receipt_url"):
    print("   receipt link (printed as a QR code): %s" % r["receipt_url"])'
}

# lane_status LANE: the lane in one line.
lane_status() {
	ctl "$1" status | python3 -c '
import json, sys
r = json.load(sys.stdin)
devs = ", ".join("%s %s" % (d["name"], "up" if d["up"] else "DOWN") for d in r["devices"])
print("   %s/%s: %s; spool: %d waiting, %d set aside; devices: %s" % (
    r["store"], r["terminal"], "online" if r["online"] else "OFFLINE (central unreachable)",
    r["spooled"], r["rejected"], devs))'
}

who_is() {
	case "$1" in
	"$HH_SMITH") echo "the Smith household" ;;
	"$HH_JONES") echo "the Jones household" ;;
	"$HH_GARCIA") echo "the Garcia household" ;;
	*) echo "a new household" ;;
	esac
}

lane_has_household() {
	ctl "$1" status | grep -q '"household":true'
}

# household_in_lane LANE: waits until the lane's open basket has its
# household (central answered the resolve) and names it.
household_in_lane() {
	local lane=$1 hh
	wait_for "$lane to recognise the household" 10 lane_has_household "$lane"
	hh=$(grep 'event=resolved ' "$D/$lane/agent.log" | tail -1 | sed -n 's/.* hhid=\([^ ]*\).*/\1/p')
	info "recognised in the lane: $(who_is "$hh") ($hh), before the total"
}

[ -x "$BIN/pos-central" ] || die "build first: make all"

say "Fresh demo folder"
rm -rf "$D"
mkdir -p "$D"
info "$D"

say "Central: a new home (CA, server certificate, HPKE key pair, HMAC keys, tokens)"
"$BIN/pos-central" setup "$D/central" | sed 's/^/   /'
PORT=$(free_port)
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT/" "$D/central/central.conf"
info "central will listen on 127.0.0.1:$PORT"
PPORT=$(free_port)
sed -i "s/^public_listen = .*/public_listen = 127.0.0.1:$PPORT/" "$D/central/central.conf"
info "phones and browsers (receipts, chat) on https://127.0.0.1:$PPORT"
"$BIN/pos-central" items import -c "$D/central/central.conf" <<'ITEMS' | sed 's/^/   /'
gtin,name,vendor,category
9520000000011,Whole milk 1 l,Dairyland,dairy
9520000000028,Sourdough bread,Bakehouse,bakery
9520000000035,Apples (each),Orchard,produce
9520000000042,Ground coffee 250 g,Roastery,pantry
04006381333931,Television 55 in,Acme Delivery,tv
04012345000016,Wall mount,Mount Co,tv
ITEMS

say "Terminal certificates for store S1, lanes T1 and T2"
for t in 1 2; do
	"$BIN/pos-central" terminal-cert "$D/central" --store S1 --terminal "T$t" \
		--out "$D/lane$t" >/dev/null
	# US stores embed the price of weighed items in a UPC-A of number system 2.
	sed -i '/^id = /a variable_measure = us' "$D/lane$t/terminal.conf"
	printf '\n[receipt]\nbase_url = https://127.0.0.1:%s\n' "$PPORT" >>"$D/lane$t/terminal.conf"
	info "lane$t: terminal.crt (OU=S1, CN=T$t), terminal.key, ca.crt, central.pub, terminal.conf"
done

say "The store's controller for S1 (pos-central store-cert: OU=S1, CN=store-controller)"
"$BIN/pos-central" store-cert "$D/central" --store S1 --out "$D/store" >/dev/null
SPORT=$(free_port)
sed -i -e "s|^address = .*|address = 127.0.0.1:$SPORT|" \
	-e "s|^url = .*|url = https://127.0.0.1:$PORT|" "$D/store/store.conf"
# Lane 2 logs through the controller first, central second.
sed -i "s|^url = .*|url = https://127.0.0.1:$SPORT https://127.0.0.1:$PORT|" "$D/lane2/terminal.conf"
"$BIN/pos-store" check -c "$D/store/store.conf" | sed 's/^/   /'
info "store: store.crt, store.key, ca.crt, store.conf; lane 2 lists https://127.0.0.1:$SPORT first"

say "Enrolling households from the loyalty base (household_ref,tid on stdin)"
# The TIDs are public test numbers; they go in on stdin and never reach a log.
enrolled=$("$BIN/pos-central" household enroll -c "$D/central/central.conf" <<'EOF'
household_ref,tid
smith,card:4242424242424242
smith,card:5555555555554444
jones,loyalty:9900000000011
garcia,phone:+15550100234
EOF
)
HH_SMITH=$(echo "$enrolled" | awk -F, '$1==2{print $2}')
HH_JONES=$(echo "$enrolled" | awk -F, '$1==4{print $2}')
HH_GARCIA=$(echo "$enrolled" | awk -F, '$1==5{print $2}')
info "Smith household (two cards): $HH_SMITH"
info "Jones household (loyalty card): $HH_JONES"
info "Garcia household (phone): $HH_GARCIA"

say "Starting central"
start_central
info "central answers on https://127.0.0.1:$PORT (log: demo/central.log)"

say "Starting the store's controller"
start_store
info "pos-store answers on https://127.0.0.1:$SPORT, its log in demo/store/tlog.db (log: demo/store.log)"

say "Starting two lanes, each with a simulated scanner and card reader"
for lane in lane1 lane2; do
	start_device "$lane" scanner scanner scanner-crlf
	start_device "$lane" cardreader cardreader msr-ascii
	start_agent "$lane"
	info "$lane: pos-agent up, scanner and card reader connected"
done

say "pos-agent doctor on lane 1: configuration, devices, central, certificates, spool"
"$BIN/pos-agent" doctor -c "$D/lane1/terminal.conf" 2>&1 | sed 's/^/   /' || true

say "Marketing makes an offer; Smith's phone registers and accepts it"
OFFER_ID=$("$BIN/pos-central" offer create -c "$D/central/central.conf" --title "Milk 2 for 1" \
	--reward "a second bottle of whole milk free" --target 9520000000011)
info "offer $OFFER_ID: Milk 2 for 1 (pos-central offer create)"
DEVICE=$(curl -s --cacert "$D/central/ca.crt" -X POST "https://127.0.0.1:$PORT/v1/devices" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["device_token"])')
OFFER_CODE=$(curl -s --cacert "$D/central/ca.crt" -X POST -H "Authorization: Bearer $DEVICE" \
	"https://127.0.0.1:$PORT/v1/offers/$OFFER_ID/accept" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
info "the phone shows code $OFFER_CODE as a barcode"

say "Lane 1: Smith shows the offer, buys milk, bread, two apples, deli cheese priced in its label; swipes a Visa card"
emit lane1 scanner "$OFFER_CODE" 9520000000011 9520000000028 9520000000035 9520000000035 201234703495
emit lane1 cardreader "card 4242424242424242 2812"
household_in_lane lane1
lane_total lane1
RECEIPT=$(echo "$TOTAL_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("receipt_url",""))')

say "Smith opens the receipt on the phone (the QR code on the paper receipt) and writes to the store"
if [ -n "$RECEIPT" ]; then
	TOKEN=${RECEIPT##*/}
	info "receipt link: $RECEIPT"
	wait_for "the receipt at central" 10 curl -sf --cacert "$D/central/ca.crt" \
		-o /dev/null "https://127.0.0.1:$PPORT/v1/receipts/$TOKEN"
	curl -s --cacert "$D/central/ca.crt" "https://127.0.0.1:$PPORT/v1/receipts/$TOKEN" |
		/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("   store %s, %s" % (r["store"], r["time"])); [print("     %-22s x%d  %s" % (i.get("name") or i["gtin"], i["qty"], "" if i.get("price_cents") is None else "$%.2f" % (i["price_cents"] / 100))) for i in r["items"]]; [print("     offer redeemed: %s" % o["title"]) for o in r.get("offers", [])]' || true
	curl -s --cacert "$D/central/ca.crt" -H "Authorization: Bearer $DEVICE" \
		"https://127.0.0.1:$PORT/v1/devices/me/offers" |
		python3 -c 'import json,sys; [print("   Smith'"'"'s phone: code %s %s%s" % (c["code"], c["state"], " at " + c["store"] if c.get("store") else "")) for c in json.load(sys.stdin)["codes"]]' || true
	curl -s --cacert "$D/central/ca.crt" -H 'Content-Type: application/json' \
		-d '{"body":"Were the apples organic?"}' \
		"https://127.0.0.1:$PPORT/v1/receipts/$TOKEN/messages" >/dev/null &&
		info "message sent; store staff answer it at https://127.0.0.1:$PPORT/console"
fi

say "Lane 2: Jones scans a loyalty card, buys items, voids one"
emit lane2 scanner 9900000000011 012345678905 9520000000042 VOID 95012346
household_in_lane lane2
lane_total lane2

say "Lane 1: Garcia gives a phone number keyed by the cashier"
emit lane1 scanner 9520000000042 ]E00725272730706
echo "phone:+15550100234" | ctl lane1 tid - | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   %s" % ("phone number taken, sealed for central at once" if r.get("ok") else "refused: %s" % r.get("detail")))'
household_in_lane lane1
emit lane1 scanner TOTAL
sleep 0.3

say "Central goes down; lane 2 keeps selling (Smith's Mastercard)"
stop_central
info "central stopped"
emit lane2 scanner 9520000000011 9520000000028
emit lane2 cardreader "card 5555555555554444 2901"
sleep 0.5
lane_total lane2
lane_status lane2
info "the controller took the basket (201) and holds it for central, its card sealed:"
"$BIN/pos-store" status -c "$D/store/store.conf" | sed 's/^/   /'

say "Central comes back; the controller's log drains by itself"
start_central
wait_for "the controller's log to drain" 40 store_drained
wait_for "lane 2's spool to drain" 10 spool_empty lane2
wait_for "lane 1's spool to drain" 10 spool_empty lane1
"$BIN/pos-store" status -c "$D/store/store.conf" | sed 's/^/   /'

say "Vendors: Acme Delivery brings televisions, Mount Co installs wall mounts"
VPORT_A=$(free_port)
VPORT_B=$(free_port)
declare -A VTOK VSEC
for v in "acme:Acme Delivery:$VPORT_A" "mountco:Mount Co:$VPORT_B"; do
	IFS=: read -r vid vname vport <<<"$v"
	out=$("$BIN/pos-central" vendor add -c "$D/central/central.conf" --id "$vid" --name "$vname" \
		--backend "http://127.0.0.1:$vport/")
	VTOK[$vid]=$(echo "$out" | awk '$1=="token"{print $2}')
	VSEC[$vid]=$(echo "$out" | awk '$1=="secret"{print $2}')
	# Each vendor's backend: a small fake with bookable slots (tests/integration/fakevendor.py).
	/usr/bin/python3 tests/integration/fakevendor.py --port "$vport" --secret "${VSEC[$vid]}" \
		>"$D/vendor-$vid.log" 2>&1 &
	PIDS+=("$!")
	info "$vname: vendor '$vid', its backend on http://127.0.0.1:$vport"
done
wait_for "the vendor backends" 10 curl -sf -o /dev/null "http://127.0.0.1:$VPORT_A/_log"
wait_for "the vendor backends" 10 curl -sf -o /dev/null "http://127.0.0.1:$VPORT_B/_log"
"$BIN/pos-central" items relate -c "$D/central/central.conf" 04012345000016 04006381333931 \
	--kind requires | sed 's/^/   /'

# vendor_call VENDOR PATH BODY: a vendor's signed call (docs/vendors.md).
vendor_call() {
	local vid=$1 path=$2 body=$3 ts sig
	ts=$(date +%s)
	sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "${VSEC[$vid]}" -binary | base64)
	curl -s --cacert "$D/central/ca.crt" "https://127.0.0.1:$PPORT$path" \
		-H "Authorization: Bearer ${VTOK[$vid]}" -H "X-Pos-Timestamp: $ts" \
		-H "X-Pos-Signature: $sig" -H 'Content-Type: application/json' -d "$body" |
		python3 -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    print("refused: %s (%s)" % (r["error"], r.get("detail", "")))
else:
    print("accepted: " + ", ".join("%s %s" % (k, v) for k, v in r.items() if isinstance(v, (str, int)) and not isinstance(v, bool)))'
}
# phone METHOD PATH [BODY]: the phone's call with its device token.
phone() {
	curl -s --cacert "$D/central/ca.crt" -X "$1" -H "Authorization: Bearer $DEVICE" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "https://127.0.0.1:$PPORT$2"
}
when() { date -u -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ; }

say "Lane 1: Smith buys a television and a wall mount (Visa card)"
emit lane1 scanner 4006381333931 4012345000016
emit lane1 cardreader "card 4242424242424242 2812"
household_in_lane lane1
lane_total lane1
TV_TXN=$(echo "$TOTAL_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["txn"])')
TV_RECEIPT=$(echo "$TOTAL_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("receipt_url",""))')
wait_for "lane 1's spool to drain" 10 spool_empty lane1

say "Smith's phone opens the receipt: the phone is linked to the household"
wait_for "the receipt at central" 10 curl -sf --cacert "$D/central/ca.crt" -o /dev/null \
	"https://127.0.0.1:$PPORT/v1/receipts/${TV_RECEIPT##*/}"
phone GET "/v1/receipts/${TV_RECEIPT##*/}" | python3 -c 'import json,sys; print("   " + ("the phone is now linked to the household" if json.load(sys.stdin)["device_linked"] else "the phone is not linked"))'

say "The vendors register their services against the sale (signed calls)"
vendor_call acme /v1/vendor/activities \
	"{\"ref\":\"del-1\",\"txn\":\"$TV_TXN\",\"gtin\":\"04006381333931\",\"kind\":\"delivery\",\"at\":\"$(when 86400)\"}" | sed 's/^/   acme: /'
vendor_call mountco /v1/vendor/activities \
	"{\"ref\":\"inst-1\",\"txn\":\"$TV_TXN\",\"gtin\":\"04012345000016\",\"kind\":\"installation\",\"at\":\"$(when 172800)\"}" | sed 's/^/   mountco: /'
info "what Smith's phone owns (GET /v1/devices/me/products):"
phone GET /v1/devices/me/products | python3 -c '
import json, sys
for p in json.load(sys.stdin)["products"]:
    acts = ", ".join("%s %s %s" % (a["vendor"], a["kind"], a["at"]) for a in p["activities"])
    print("     %-18s %s" % (p["name"] or p["gtin"], acts or "-"))'

say "Acme Delivery delays the television by three days"
vendor_call acme /v1/vendor/events \
	"{\"id\":\"ev-1\",\"kind\":\"delay\",\"activity\":\"del-1\",\"new_at\":\"$(when 345600)\",\"text\":\"Your TV delivery moves by three days.\"}" | sed 's/^/   /'
offer_ready() { phone GET /v1/devices/me/messages | grep -q '"options"'; }
wait_for "Mount Co's new slots" 15 offer_ready
info "the installation came before the new delivery: central asked Mount Co's backend for slots"
MSGS=$(phone GET /v1/devices/me/messages)
echo "$MSGS" | python3 -c '
import json, sys
for m in json.load(sys.stdin)["messages"]:
    print("   [%s] %s" % (m["kind"], m["text"]))
    for o in m.get("options", []):
        print("       option %s: %s" % (o["id"], o["at"]))'
OFFER=$(echo "$MSGS" | python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["messages"] if m["kind"] == "reschedule"][0])')
info "the message page: https://127.0.0.1:$PPORT/messages#t=$DEVICE"

say "Smith picks slot-2; central reschedules with Mount Co's backend on Smith's behalf"
phone POST "/v1/messages/$OFFER/choose" '{"option":"slot-2"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   " + ("refused: %s" % r["error"] if "error" in r else "slot-2 chosen; central books it with Mount Co"))'
confirmed() { phone GET /v1/devices/me/messages | grep -q '"confirmation"'; }
wait_for "the confirmation" 15 confirmed
phone GET /v1/devices/me/messages | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["messages"] if m["kind"] == "confirmation"][0]
print("   [confirmation] %s" % m["text"])'
curl -s "http://127.0.0.1:$VPORT_B/_log" | python3 -c '
import json, sys
l = json.load(sys.stdin)
print("   Mount Co booked %d reschedule(s); it knows the customer only as %s" % (len(l["reschedules"]), l["reschedules"][0]["customer"]))'
"$BIN/pos-central" vendor report -c "$D/central/central.conf" --event ev-1 | sed 's/^/   /'

say "Purchase histories (pos-central history --format table)"
for hh in "Smith:$HH_SMITH" "Jones:$HH_JONES" "Garcia:$HH_GARCIA"; do
	printf '\n   %s\n' "${hh%%:*}"
	"$BIN/pos-central" history -c "$D/central/central.conf" --hhid "${hh#*:}" --format table \
		| sed 's/^/   /'
done

say "Totals"
for hh in "$HH_SMITH" "$HH_JONES" "$HH_GARCIA"; do
	"$BIN/pos-central" history -c "$D/central/central.conf" --hhid "$hh" --format json
done | python3 -c '
import json, sys
dec, text, pos, baskets = json.JSONDecoder(), sys.stdin.read(), 0, []
while pos < len(text.strip()):
    part, pos = dec.raw_decode(text, pos)
    baskets += part
    while pos < len(text) and text[pos].isspace():
        pos += 1
items = sum(i["qty"] for b in baskets for i in b["items"])
cents = sum(i["price_cents"] for b in baskets for i in b["items"] if i["price_cents"] is not None)
print(f"   3 households, {len(baskets)} baskets, {items} items, ${cents / 100:.2f} of known prices")
'

say "The store manager's report for today (pos-store report --day today --format table)"
"$BIN/pos-store" report -c "$D/store/store.conf" --day today --format table | sed 's/^/   /'
info "lane 2's baskets went through the controller; lane 1 talks to central directly"

say "The terminals central issued, and when each last sent a basket (pos-central terminal list)"
"$BIN/pos-central" terminal list -c "$D/central/central.conf" | sed 's/^/   /'

say "Stopping everything"
cleanup
PIDS=()

say "No file under demo/ holds a customer identifier (plain, hex or base64)"
/usr/bin/python3 - "$D" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from posenv import scan_for_tids
tids = ["card:4242424242424242", "card:5555555555554444", "loyalty:9900000000011",
        "phone:+15550100234"]
hits = scan_for_tids(sys.argv[1], tids)
files = sum(len(f) for _, _, f in os.walk(sys.argv[1]))
for path, kind in hits:
    print(f"   LEAK: {path} holds a {kind} identifier")
print(f"   {files} files checked (databases, WAL files, spools, logs, keys): "
      + ("none found" if not hits else f"{len(hits)} found"))
sys.exit(1 if hits else 0)
EOF
info "done: logs and databases are under demo/"

say "The analysts' workbench"
info "start central again:  $BUILD/bin/pos-central serve -c demo/central/central.conf"
info "then open:            https://127.0.0.1:$PORT/analyst/"
info "sign in with the analyst token in $D/central/analyst.token"
info "a demo household:     https://127.0.0.1:$PORT/analyst/households/$HH_SMITH"
info "(cohorts and funnels count at least [privacy] k_min = 10 households; the demo has 3)"
info "Smith's vendor messages:   https://127.0.0.1:$PPORT/messages#t=$DEVICE"
if [ -n "$RECEIPT" ]; then
	info "Smith's receipt and its chat: $RECEIPT"
	info "(staff answer at https://127.0.0.1:$PPORT/console with a token from pos-central staff add)"
fi
