-- ihb.lua: Wireshark/tshark (4.0 and later) dissectors for the IGMP hot-backup lab's own protocols.
--
--   etrunk  E-Trunk hello/goodbye, UDP port 1025, HMAC-SHA256 trailer (verified when a key is set)
--   rbs     RBS backup channel, TCP port 1025, length-prefixed records (reassembled over TCP)
--
-- Wire formats: docs/protocol.md; the reference is the Python codecs daemon/etrunk/codec.py and
-- daemon/rbs/codec.py (decode reasons such as "bad-magic" are the codecs' DecodeError reasons).
-- Use:  tshark -X lua_script:scripts/wireshark/ihb.lua -o "etrunk.key:KEY" -r capture.pcap
-- or install for Wireshark with `make wireshark-plugin`. See scripts/wireshark/README.md.

-- ---------------------------------------------------------------------------------------------
-- 32-bit operations: bit32 (Lua 5.2, Wireshark 4.0/4.2) or native operators (Lua 5.3+), the
-- latter compiled from a string so that Lua 5.2 never parses them.
-- ---------------------------------------------------------------------------------------------
local band, bxor, bnot, rshift, rrotate
if bit32 then
    band, bxor, bnot = bit32.band, bit32.bxor, bit32.bnot
    rshift, rrotate = bit32.rshift, bit32.rrotate
else
    band, bxor, bnot, rshift, rrotate = load([[
        local M = 0xffffffff
        return function(a, b) return a & b end,
            function(a, b, c) if c then return a ~ b ~ c end return a ~ b end,
            function(a) return ~a & M end,
            function(a, n) return a >> n end,
            function(a, n) return ((a >> n) | (a << (32 - n))) & M end
    ]])()
end

local TWO32 = 4294967296

-- ---------------------------------------------------------------------------------------------
-- SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) on Lua strings.
-- ---------------------------------------------------------------------------------------------
local K256 = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256(msg)
    local ml = #msg
    local bits = ml * 8
    local tail = {}
    for i = 7, 0, -1 do
        tail[#tail + 1] = string.char(math.floor(bits / 256 ^ i) % 256)
    end
    msg = msg .. "\128" .. string.rep("\0", (55 - ml) % 64) .. table.concat(tail)
    local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
    local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    local w = {}
    for chunk = 1, #msg, 64 do
        for i = 0, 15 do
            local a, b, c, d = msg:byte(chunk + 4 * i, chunk + 4 * i + 3)
            w[i] = ((a * 256 + b) * 256 + c) * 256 + d
        end
        for i = 16, 63 do
            local v15, v2 = w[i - 15], w[i - 2]
            local s0 = bxor(rrotate(v15, 7), rrotate(v15, 18), rshift(v15, 3))
            local s1 = bxor(rrotate(v2, 17), rrotate(v2, 19), rshift(v2, 10))
            w[i] = (w[i - 16] + s0 + w[i - 7] + s1) % TWO32
        end
        local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
        for i = 0, 63 do
            local S1 = bxor(rrotate(e, 6), rrotate(e, 11), rrotate(e, 25))
            local ch = bxor(band(e, f), band(bnot(e), g))
            local t1 = (h + S1 + ch + K256[i + 1] + w[i]) % TWO32
            local S0 = bxor(rrotate(a, 2), rrotate(a, 13), rrotate(a, 22))
            local maj = bxor(band(a, b), band(a, c), band(b, c))
            local t2 = (S0 + maj) % TWO32
            h, g, f, e = g, f, e, (d + t1) % TWO32
            d, c, b, a = c, b, a, (t1 + t2) % TWO32
        end
        h0, h1, h2, h3 = (h0 + a) % TWO32, (h1 + b) % TWO32, (h2 + c) % TWO32, (h3 + d) % TWO32
        h4, h5, h6, h7 = (h4 + e) % TWO32, (h5 + f) % TWO32, (h6 + g) % TWO32, (h7 + h) % TWO32
    end
    local out = {}
    for _, v in ipairs({ h0, h1, h2, h3, h4, h5, h6, h7 }) do
        out[#out + 1] = string.char(
            math.floor(v / 16777216) % 256, math.floor(v / 65536) % 256,
            math.floor(v / 256) % 256, v % 256)
    end
    return table.concat(out)
end

local function hmac_sha256(key, msg)
    if #key > 64 then
        key = sha256(key)
    end
    key = key .. string.rep("\0", 64 - #key)
    local ipad, opad = {}, {}
    for i = 1, 64 do
        local k = key:byte(i)
        ipad[i] = string.char(bxor(k, 0x36))
        opad[i] = string.char(bxor(k, 0x5c))
    end
    return sha256(table.concat(opad) .. sha256(table.concat(ipad) .. msg))
end

local function tohex(s)
    return (s:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

-- ---------------------------------------------------------------------------------------------
-- The E-Trunk security key, as daemon/config/model.py SecurityKey derives its bytes: a clear key
-- is its own octets; a "%^%#...%^%#" cipher string of the lab's own form (base64 with "!_" for
-- "+/" of "LAB1" + key XOR a fixed SHAKE-256 pad) decodes to its clear key; any other cipher
-- string (a real device's, such as the seed's) is used verbatim, as its octets.
-- ---------------------------------------------------------------------------------------------
local CIPHER_MARK = "%^%#"
local CIPHER_MAGIC = "LAB1"
-- shake_256(b"igmp-hot-backup-lab security-key obfuscation v1").digest(64): clear keys are at
-- most 16 octets; a longer lab cipher than this pad covers is treated as opaque.
local CIPHER_PAD = "a7e020621c6a88d137c52f24087dfd5118f30275fc0ca90593bac83b01ab0049"
    .. "9055cc28ec045e476bbff2747733f736c298ff67b174f6bf2bc681c6637026db"
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64decode_strict(s)
    local pads = #s:match("=*$")
    local body = s:sub(1, #s - pads)
    if #s % 4 ~= 0 or pads > 2 or body:find("[^A-Za-z0-9+/]") then
        return nil
    end
    local out, acc, nbits = {}, 0, 0
    for i = 1, #body do
        acc = acc * 64 + (B64:find(body:sub(i, i), 1, true) - 1)
        nbits = nbits + 6
        if nbits >= 8 then
            nbits = nbits - 8
            local byte = math.floor(acc / 2 ^ nbits)
            out[#out + 1] = string.char(byte)
            acc = acc - byte * 2 ^ nbits
        end
    end
    return table.concat(out)
end

local function decode_lab_cipher(text)
    local body = text:sub(#CIPHER_MARK + 1, #text - #CIPHER_MARK)
    if body:find("[^\1-\127]") or body:find("[+/]") then
        return nil
    end
    local b64 = body:gsub("!", "+"):gsub("_", "/")
    b64 = b64 .. string.rep("=", (-#b64) % 4)
    local raw = b64decode_strict(b64)
    if not raw or raw:sub(1, #CIPHER_MAGIC) ~= CIPHER_MAGIC or #raw == #CIPHER_MAGIC then
        return nil
    end
    local enc = raw:sub(#CIPHER_MAGIC + 1)
    if #enc > #CIPHER_PAD / 2 then
        return nil
    end
    local out = {}
    for i = 1, #enc do
        out[i] = string.char(bxor(enc:byte(i), tonumber(CIPHER_PAD:sub(2 * i - 1, 2 * i), 16)))
    end
    return table.concat(out)
end

local function key_bytes(text)
    if #text > 2 * #CIPHER_MARK and text:sub(1, #CIPHER_MARK) == CIPHER_MARK
        and text:sub(-#CIPHER_MARK) == CIPHER_MARK then
        local clear = decode_lab_cipher(text)
        if clear then
            return clear, "lab cipher"
        end
        return text, "opaque cipher"
    end
    return text, "clear"
end

local function valid_utf8(s)
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        if c < 0x80 then
            i = i + 1
        else
            local len, cp, min
            if c >= 0xC2 and c <= 0xDF then
                len, cp, min = 2, c - 0xC0, 0x80
            elseif c >= 0xE0 and c <= 0xEF then
                len, cp, min = 3, c - 0xE0, 0x800
            elseif c >= 0xF0 and c <= 0xF4 then
                len, cp, min = 4, c - 0xF0, 0x10000
            else
                return false
            end
            if i + len - 1 > n then
                return false
            end
            for j = i + 1, i + len - 1 do
                local cc = s:byte(j)
                if cc < 0x80 or cc > 0xBF then
                    return false
                end
                cp = cp * 64 + (cc - 0x80)
            end
            if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
                return false
            end
            i = i + len
        end
    end
    return true
end

-- =============================================================================================
-- E-Trunk hello (UDP)
-- =============================================================================================
local etrunk = Proto("etrunk", "E-Trunk Hello (IGMP hot-backup lab)")

local ET_MAGIC = "ETRK"
local ET_HEADER_LEN = 36
local ET_MEMBER_LEN = 8
local ET_DIGEST_LEN = 32
local ET_MIN_LEN = ET_HEADER_LEN + ET_DIGEST_LEN -- 68

local et_types = { [1] = "HELLO", [2] = "GOODBYE" }
local et_states = { [1] = "Init", [2] = "Backup", [3] = "Master" }
local et_phy = { [0] = "down", [1] = "up" }
local et_roles = { [1] = "master", [2] = "backup" }
local et_modes = { [1] = "auto", [2] = "force-master", [3] = "force-backup" }
local et_digest_status = { [0] = "Bad", [1] = "Good", [2] = "Unverified" }
local DIGEST_BAD, DIGEST_GOOD, DIGEST_UNVERIFIED = 0, 1, 2

local ef = {
    magic = ProtoField.uint32("etrunk.magic", "Magic", base.HEX),
    version = ProtoField.uint8("etrunk.version", "Version", base.DEC),
    type = ProtoField.uint8("etrunk.type", "Type", base.DEC, et_types),
    flags = ProtoField.uint8("etrunk.flags", "Flags", base.HEX),
    flag_bfd = ProtoField.bool("etrunk.flags.bfd", "BFD", 8, nil, 0x01,
        "The sender's E-Trunk tracks a BFD session to the receiver"),
    flag_revert = ProtoField.bool("etrunk.flags.revert", "Revert", 8, nil, 0x02,
        "The sender has revert enabled"),
    flag_reserved = ProtoField.uint8("etrunk.flags.reserved", "Reserved flags", base.HEX, nil,
        0xfc),
    state = ProtoField.uint8("etrunk.state", "E-Trunk state", base.DEC, et_states),
    length = ProtoField.uint16("etrunk.length", "Length", base.DEC),
    id = ProtoField.uint16("etrunk.id", "E-Trunk ID", base.DEC),
    priority = ProtoField.uint8("etrunk.priority", "Priority", base.DEC),
    member_count = ProtoField.uint8("etrunk.member_count", "Member count", base.DEC),
    hello = ProtoField.uint16("etrunk.hello_period", "Hello period (x100 ms)", base.DEC),
    fail = ProtoField.uint32("etrunk.fail_time", "Fail time (x100 ms)", base.DEC),
    system_id = ProtoField.ether("etrunk.system_id", "System ID"),
    reserved = ProtoField.bytes("etrunk.reserved", "Reserved"),
    seq = ProtoField.uint64("etrunk.seq", "Sequence number", base.DEC),
    member = ProtoField.none("etrunk.member", "Member"),
    m_trunk = ProtoField.uint16("etrunk.member.trunk_id", "Eth-Trunk ID", base.DEC),
    m_phy = ProtoField.uint8("etrunk.member.phy", "Phy state", base.DEC, et_phy),
    m_role = ProtoField.uint8("etrunk.member.role", "Role", base.DEC, et_roles),
    m_mode = ProtoField.uint8("etrunk.member.mode", "Work mode", base.DEC, et_modes),
    m_flags = ProtoField.uint8("etrunk.member.flags", "Member flags", base.HEX),
    m_attached = ProtoField.bool("etrunk.member.attached", "Attached", 8, nil, 0x01,
        "The switch has the sender's Eth-Trunk in its aggregate (LACP partner in sync)"),
    m_flags_reserved = ProtoField.uint8("etrunk.member.flags.reserved", "Reserved flags",
        base.HEX, nil, 0xfe),
    m_reserved = ProtoField.bytes("etrunk.member.reserved", "Reserved"),
    digest = ProtoField.bytes("etrunk.digest", "HMAC-SHA256"),
    digest_status = ProtoField.uint8("etrunk.digest.status", "Digest status", base.DEC,
        et_digest_status),
    digest_computed = ProtoField.bytes("etrunk.digest.computed", "Computed HMAC-SHA256"),
    undecoded = ProtoField.bytes("etrunk.undecoded", "Undecoded octets"),
}
etrunk.fields = ef

local ee = {
    short = ProtoExpert.new("etrunk.short", "short: datagram below 68 octets",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_magic = ProtoExpert.new("etrunk.bad_magic", "bad-magic: not ETRK",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_version = ProtoExpert.new("etrunk.bad_version", "bad-version: unknown version",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_length = ProtoExpert.new("etrunk.bad_length", "bad-length: length mismatch",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_digest = ProtoExpert.new("etrunk.bad_digest", "bad-digest: HMAC-SHA256 mismatch",
        expert.group.CHECKSUM, expert.severity.ERROR),
    bad_type = ProtoExpert.new("etrunk.bad_type", "bad-type: unknown message type",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_field = ProtoExpert.new("etrunk.bad_field", "bad-field: value out of range",
        expert.group.MALFORMED, expert.severity.ERROR),
    reserved_nonzero = ProtoExpert.new("etrunk.reserved_nonzero",
        "reserved bits not zero (ignored on receipt)", expert.group.PROTOCOL,
        expert.severity.NOTE),
}
etrunk.experts = { ee.short, ee.bad_magic, ee.bad_version, ee.bad_length, ee.bad_digest,
    ee.bad_type, ee.bad_field, ee.reserved_nonzero }

etrunk.prefs.port = Pref.uint("UDP port", 1025, "UDP port of E-Trunk hellos (both ends)")
etrunk.prefs.key = Pref.string("Security key", "",
    "E-Trunk security-key: the clear key, or the %^%#...%^%# cipher text from the configuration "
        .. "(the lab's own cipher form decodes to its clear key; any other is used verbatim). "
        .. "Empty: the digest is checked against the empty key (no security-key configured) and "
        .. "shown Unverified when that does not match.")

function etrunk.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    pinfo.cols.protocol = "E-Trunk"
    pinfo.cols.info = "E-Trunk"
    local t = tree:add(etrunk, tvb())

    local function rest(from)
        if from < n then
            t:add(ef.undecoded, tvb(from))
        end
    end
    -- The first decode reason in the daemon's order goes to Info; every problem gets an
    -- expert item.
    local reason = nil
    local function fail(item, expert_field, text, why)
        (item or t):add_proto_expert_info(expert_field, text)
        reason = reason or why
    end
    local function finish()
        if reason then
            pinfo.cols.info:append(" [MALFORMED: " .. reason .. "]")
            t:append_text(" [MALFORMED: " .. reason .. "]")
        end
        return n
    end

    -- 1. short; 2. magic and version select the format: nothing else is read without them.
    if n < ET_MIN_LEN then
        fail(nil, ee.short, string.format("short: %d octets, need %d", n, ET_MIN_LEN), "short")
    end
    if n < 4 then
        rest(0)
        return finish()
    end
    local mitem = t:add(ef.magic, tvb(0, 4))
    if tvb:raw(0, 4) ~= ET_MAGIC then
        fail(mitem, ee.bad_magic, "bad-magic: " .. tohex(tvb:raw(0, 4)), "bad-magic")
        rest(4)
        return finish()
    end
    if n < 5 then
        return finish()
    end
    local vitem = t:add(ef.version, tvb(4, 1))
    local version = tvb(4, 1):uint()
    if version ~= 1 then
        fail(vitem, ee.bad_version, "bad-version: version " .. version, "bad-version")
        rest(5)
        return finish()
    end

    -- The fixed header, as far as it is there (a short datagram shows what it has).
    local function have(off, len)
        return off + len <= n
    end
    local hdr = {}
    if have(5, 1) then
        hdr.type = tvb(5, 1):uint()
        hdr.type_item = t:add(ef.type, tvb(5, 1))
    end
    if have(6, 1) then
        local fi = t:add(ef.flags, tvb(6, 1))
        fi:add(ef.flag_bfd, tvb(6, 1))
        fi:add(ef.flag_revert, tvb(6, 1))
        local ri = fi:add(ef.flag_reserved, tvb(6, 1))
        if band(tvb(6, 1):uint(), 0xfc) ~= 0 then
            ri:add_proto_expert_info(ee.reserved_nonzero)
        end
    end
    if have(7, 1) then
        hdr.state = tvb(7, 1):uint()
        hdr.state_item = t:add(ef.state, tvb(7, 1))
    end
    if have(8, 2) then
        hdr.length = tvb(8, 2):uint()
        hdr.length_item = t:add(ef.length, tvb(8, 2))
    end
    if have(10, 2) then
        hdr.id = tvb(10, 2):uint()
        t:add(ef.id, tvb(10, 2))
    end
    if have(12, 1) then
        hdr.priority = tvb(12, 1):uint()
        hdr.priority_item = t:add(ef.priority, tvb(12, 1))
    end
    if have(13, 1) then
        hdr.count = tvb(13, 1):uint()
        hdr.count_item = t:add(ef.member_count, tvb(13, 1))
    end
    if have(14, 2) then
        hdr.hello = tvb(14, 2):uint()
        hdr.hello_item = t:add(ef.hello, tvb(14, 2))
        hdr.hello_item:append_text(string.format(" (%.1f s)", hdr.hello / 10))
    end
    if have(16, 4) then
        hdr.fail = tvb(16, 4):uint()
        hdr.fail_item = t:add(ef.fail, tvb(16, 4))
        hdr.fail_item:append_text(string.format(" (%.1f s)", hdr.fail / 10))
    end
    if have(20, 6) then
        t:add(ef.system_id, tvb(20, 6))
    end
    if have(26, 2) then
        local ri = t:add(ef.reserved, tvb(26, 2))
        if tvb(26, 2):uint() ~= 0 then
            ri:add_proto_expert_info(ee.reserved_nonzero)
        end
    end
    if have(28, 8) then
        hdr.seq = tvb(28, 8):uint64()
        t:add(ef.seq, tvb(28, 8))
    end

    -- Info: "E-Trunk 1 HELLO Master prio 100 seq N"
    local info = { "E-Trunk" }
    if hdr.id then info[#info + 1] = tostring(hdr.id) end
    if hdr.type then info[#info + 1] = et_types[hdr.type] or ("type " .. hdr.type) end
    if hdr.state then info[#info + 1] = et_states[hdr.state] or ("state " .. hdr.state) end
    if hdr.priority then info[#info + 1] = "prio " .. hdr.priority end
    if hdr.seq then info[#info + 1] = "seq " .. tostring(hdr.seq) end
    pinfo.cols.info = table.concat(info, " ")
    if #info > 1 then
        t:append_text(", " .. table.concat(info, " "))
    end

    if n < ET_MIN_LEN then
        rest(math.min(n, ET_HEADER_LEN))
        return finish()
    end

    -- 3. the length field is the datagram length
    if hdr.length ~= n then
        fail(hdr.length_item, ee.bad_length,
            string.format("bad-length: length field %d, datagram %d", hdr.length, n),
            "bad-length")
    end

    -- Members: the octets between header and digest, Member count x 8 of them.
    local area = n - ET_MIN_LEN
    if ET_MEMBER_LEN * hdr.count ~= area then
        fail(hdr.count_item, ee.bad_length,
            string.format("bad-length: %d members in %d octets (%d octets of members)",
                hdr.count, n, area), "bad-length")
    end
    local shown = math.min(hdr.count, math.floor(area / ET_MEMBER_LEN))
    local seen = {}
    local summary = {}
    for i = 0, shown - 1 do
        local off = ET_HEADER_LEN + ET_MEMBER_LEN * i
        local trunk = tvb(off, 2):uint()
        local phy, role, mode = tvb(off + 2, 1):uint(), tvb(off + 3, 1):uint(),
            tvb(off + 4, 1):uint()
        local mflags = tvb(off + 5, 1):uint()
        local mt = t:add(ef.member, tvb(off, ET_MEMBER_LEN))
        mt:set_text(string.format("Member Eth-Trunk %d: %s, %s, %s%s", trunk,
            et_phy[phy] or ("phy " .. phy), et_roles[role] or ("role " .. role),
            et_modes[mode] or ("mode " .. mode),
            (mflags % 2 == 1) and ", attached" or ""))
        local ti = mt:add(ef.m_trunk, tvb(off, 2))
        local pi = mt:add(ef.m_phy, tvb(off + 2, 1))
        local rli = mt:add(ef.m_role, tvb(off + 3, 1))
        local mi = mt:add(ef.m_mode, tvb(off + 4, 1))
        local fi = mt:add(ef.m_flags, tvb(off + 5, 1))
        fi:add(ef.m_attached, tvb(off + 5, 1))
        local fri = fi:add(ef.m_flags_reserved, tvb(off + 5, 1))
        if mflags >= 2 then
            fri:add_proto_expert_info(ee.reserved_nonzero)
        end
        local resi = mt:add(ef.m_reserved, tvb(off + 6, 2))
        if tvb(off + 6, 2):uint() ~= 0 then
            resi:add_proto_expert_info(ee.reserved_nonzero)
        end
        if not et_phy[phy] then
            fail(pi, ee.bad_field, string.format("bad-field: member %d phy %d", trunk, phy),
                "bad-field")
        end
        if not et_roles[role] then
            fail(rli, ee.bad_field, string.format("bad-field: member %d role %d", trunk, role),
                "bad-field")
        end
        if not et_modes[mode] then
            fail(mi, ee.bad_field, string.format("bad-field: member %d mode %d", trunk, mode),
                "bad-field")
        end
        if seen[trunk] then
            fail(ti, ee.bad_field, "bad-field: duplicate member trunk id " .. trunk, "bad-field")
        end
        seen[trunk] = true
        summary[#summary + 1] = string.format("%d:%s/%s", trunk, et_phy[phy] or "?",
            et_roles[role] or "?")
    end
    if ET_HEADER_LEN + ET_MEMBER_LEN * shown < n - ET_DIGEST_LEN then
        t:add(ef.undecoded, tvb(ET_HEADER_LEN + ET_MEMBER_LEN * shown,
            n - ET_DIGEST_LEN - ET_HEADER_LEN - ET_MEMBER_LEN * shown))
    end

    -- Field ranges (the daemon checks them after the digest; shown regardless).
    if not et_types[hdr.type] then
        fail(hdr.type_item, ee.bad_type, "bad-type: type " .. hdr.type, "bad-type")
    end
    if not et_states[hdr.state] then
        fail(hdr.state_item, ee.bad_field, "bad-field: state " .. hdr.state, "bad-field")
    end
    if hdr.priority < 1 or hdr.priority > 254 then
        fail(hdr.priority_item, ee.bad_field, "bad-field: priority " .. hdr.priority, "bad-field")
    end
    if hdr.hello == 0 then
        fail(hdr.hello_item, ee.bad_field, "bad-field: hello period 0", "bad-field")
    end
    if hdr.fail == 0 then
        fail(hdr.fail_item, ee.bad_field, "bad-field: fail time 0", "bad-field")
    end

    -- 4. the digest: the last 32 octets, over everything before them
    local doff = n - ET_DIGEST_LEN
    local di = t:add(ef.digest, tvb(doff, ET_DIGEST_LEN))
    local key, form = key_bytes(etrunk.prefs.key or "")
    local computed = hmac_sha256(key, tvb:raw(0, doff))
    local status
    if computed == tvb:raw(doff, ET_DIGEST_LEN) then
        status = DIGEST_GOOD
        di:append_text(key == "" and " [Good, empty key]" or " [Good]")
    elseif key == "" then
        status = DIGEST_UNVERIFIED
        di:append_text(" [Unverified: no key set]")
    else
        status = DIGEST_BAD
        di:append_text(" [Bad]")
    end
    di:add(ef.digest_status, status):set_generated()
    if status == DIGEST_BAD then
        di:add(ef.digest_computed, tvb(doff, ET_DIGEST_LEN), computed):set_generated()
        di:add_proto_expert_info(ee.bad_digest, string.format(
            "bad-digest: HMAC-SHA256 does not match the configured key (%s, %d octets)",
            form, #key))
        pinfo.cols.info:append(" [BAD DIGEST]")
    end

    if #summary > 0 then
        t:append_text(", members " .. table.concat(summary, " "))
    end
    return finish()
end

-- =============================================================================================
-- RBS backup channel (TCP)
-- =============================================================================================
local rbs = Proto("rbs", "RBS Backup Channel (IGMP hot-backup lab)")

local RBS_MAGIC = 0x5242
local RBS_HEADER_LEN = 16
local RBS_MAX_PAYLOAD = 65536 - RBS_HEADER_LEN

local rbs_types = {
    [1] = "OPEN", [2] = "OPEN_ACK", [3] = "BATCH_START", [4] = "ENTRY",
    [5] = "BATCH_END", [6] = "ACK", [7] = "KEEPALIVE", [8] = "ERROR",
}
local rbs_ops = { [1] = "ADD", [2] = "UPDATE", [3] = "DELETE" }
local rbs_modes = { [1] = "INCLUDE", [2] = "EXCLUDE" }
local rbs_error_codes = {
    [1] = "MALFORMED", [2] = "PROTOCOL", [3] = "BACKUP_ID_MISMATCH", [4] = "PEER_MISMATCH",
}

local rf = {
    magic = ProtoField.uint16("rbs.magic", "Magic", base.HEX),
    version = ProtoField.uint8("rbs.version", "Version", base.DEC),
    type = ProtoField.uint8("rbs.type", "Type", base.DEC, rbs_types),
    flags = ProtoField.uint16("rbs.flags", "Flags", base.HEX),
    flag_ack_request = ProtoField.bool("rbs.flags.ack_request", "ACK_REQUEST", 16, nil, 0x0001,
        "Acknowledge this record at once"),
    flag_holdings = ProtoField.bool("rbs.flags.holdings", "HOLDINGS", 16, nil, 0x0002,
        "A batch of what the sender holds for the addressee (its copy of the addressee's "
        .. "entries), not of what it serves"),
    flag_reserved = ProtoField.uint16("rbs.flags.reserved", "Reserved flags", base.HEX, nil,
        0xfffc),
    reserved = ProtoField.uint16("rbs.reserved", "Reserved", base.HEX),
    length = ProtoField.uint32("rbs.length", "Payload length", base.DEC),
    seq = ProtoField.uint32("rbs.seq", "Sequence number", base.DEC),
    str_len = ProtoField.uint8("rbs.str_len", "String length", base.DEC),
    -- OPEN
    open_device = ProtoField.string("rbs.open.device", "Device name", base.UNICODE),
    open_source = ProtoField.ipv4("rbs.open.source", "Source address"),
    open_profile_count = ProtoField.uint16("rbs.open.profile_count", "Profile count", base.DEC),
    open_profile = ProtoField.none("rbs.open.profile", "Profile"),
    profile_name = ProtoField.string("rbs.open.profile.name", "Profile name", base.UNICODE),
    profile_backup_id = ProtoField.uint16("rbs.open.profile.backup_id", "Backup-id", base.DEC),
    profile_service_count = ProtoField.uint8("rbs.open.profile.service_count",
        "Service type count", base.DEC),
    profile_service = ProtoField.string("rbs.open.profile.service", "Service type",
        base.UNICODE),
    -- BATCH_START / BATCH_END
    batch_backup_id = ProtoField.uint16("rbs.batch.backup_id", "Backup-id", base.DEC),
    batch_count = ProtoField.uint32("rbs.batch.count", "Entry count", base.DEC),
    -- ENTRY
    entry_backup_id = ProtoField.uint16("rbs.entry.backup_id", "Backup-id", base.DEC),
    entry_service = ProtoField.string("rbs.entry.service", "Service", base.UNICODE),
    entry_op = ProtoField.uint8("rbs.entry.op", "Operation", base.DEC, rbs_ops),
    entry_interface = ProtoField.string("rbs.entry.interface", "Interface", base.UNICODE),
    entry_group = ProtoField.ipv4("rbs.entry.group", "Group address"),
    entry_mode = ProtoField.uint8("rbs.entry.mode", "Filter mode", base.DEC, rbs_modes),
    entry_reporter = ProtoField.ipv4("rbs.entry.reporter", "Last reporter"),
    entry_uptime = ProtoField.uint32("rbs.entry.uptime", "Uptime (s)", base.DEC),
    entry_source_count = ProtoField.uint16("rbs.entry.source_count", "Source count", base.DEC),
    entry_source = ProtoField.ipv4("rbs.entry.source", "Source address"),
    -- ACK
    ack_seq = ProtoField.uint32("rbs.ack.seq", "Acknowledged sequence number", base.DEC),
    -- ERROR
    error_code = ProtoField.uint16("rbs.error.code", "Error code", base.DEC, rbs_error_codes),
    error_backup_id = ProtoField.uint16("rbs.error.backup_id", "Backup-id", base.DEC),
    error_text_len = ProtoField.uint16("rbs.error.text_len", "Text length", base.DEC),
    error_text = ProtoField.string("rbs.error.text", "Text", base.UNICODE),
    undecoded = ProtoField.bytes("rbs.undecoded", "Undecoded octets"),
}
rbs.fields = rf

local re = {
    bad_magic = ProtoExpert.new("rbs.bad_magic", "bad-magic: not a record (magic is not RB)",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_version = ProtoExpert.new("rbs.bad_version", "bad-version: unknown version",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_type = ProtoExpert.new("rbs.bad_type", "bad-type: unknown record type",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_flags = ProtoExpert.new("rbs.bad_flags", "bad-flags: undefined flag bits",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_reserved = ProtoExpert.new("rbs.bad_reserved", "bad-reserved: reserved not zero",
        expert.group.MALFORMED, expert.severity.ERROR),
    oversized = ProtoExpert.new("rbs.oversized", "oversized: record over 65536 octets",
        expert.group.MALFORMED, expert.severity.ERROR),
    truncated_record = ProtoExpert.new("rbs.truncated_record",
        "truncated: the connection closed inside a record",
        expert.group.MALFORMED, expert.severity.ERROR),
    truncated = ProtoExpert.new("rbs.truncated", "truncated: a field runs past the payload",
        expert.group.MALFORMED, expert.severity.ERROR),
    trailing = ProtoExpert.new("rbs.trailing_bytes", "trailing-bytes: octets after the fields",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_field = ProtoExpert.new("rbs.bad_field", "invalid field value",
        expert.group.MALFORMED, expert.severity.ERROR),
}
rbs.experts = { re.bad_magic, re.bad_version, re.bad_type, re.bad_flags, re.bad_reserved,
    re.oversized, re.truncated_record, re.truncated, re.trailing, re.bad_field }

rbs.prefs.port = Pref.uint("TCP port", 1025,
    "TCP port of the RBS backup channel (remote-backup-service ... port N)")

local f_tcp_fin = Field.new("tcp.flags.fin")

-- A cursor over one record's payload [pos, stop). A field past `stop` is "truncated" and stops
-- the walk; a wrong value is flagged where it is and the walk goes on while the layout is known.
local Reader = {}
Reader.__index = Reader

local function new_reader(tvb, tree, pos, stop)
    return setmetatable({ tvb = tvb, tree = tree, base = pos, pos = pos, stop = stop,
        reason = nil, stopped = false }, Reader)
end

function Reader:error(item, expert_field, text)
    (item or self.tree):add_proto_expert_info(expert_field, text)
    self.reason = self.reason or text:match("^[%w-]+")
end

-- Show what is left as undecoded octets and stop.
function Reader:abandon()
    if self.pos < self.stop then
        self.tree:add(rf.undecoded, self.tvb(self.pos, self.stop - self.pos))
    end
    self.pos = self.stop
    self.stopped = true
end

-- The next n octets as a TvbRange, or nil (marked truncated) when the payload ends first.
function Reader:take(n)
    if self.stopped then
        return nil
    end
    if self.pos + n > self.stop then
        local at = self.pos - self.base
        self:abandon()
        self:error(nil, re.truncated,
            string.format("truncated: need %d octets at payload offset %d", n, at))
        return nil
    end
    local r = self.tvb(self.pos, n)
    self.pos = self.pos + n
    return r
end

function Reader:uint(field, n, tree)
    local r = self:take(n)
    if not r then
        return nil
    end
    return r:uint(), (tree or self.tree):add(field, r)
end

-- An IPv4 field: (Address, item, the address as a number).
function Reader:ipv4(field, tree)
    local r = self:take(4)
    if not r then
        return nil
    end
    return r:ipv4(), (tree or self.tree):add(field, r), r:uint()
end

-- str8: a length octet (1-255) and that many octets of UTF-8.
function Reader:str8(field, what, tree)
    tree = tree or self.tree
    local lr = self:take(1)
    if not lr then
        return nil
    end
    local li = tree:add(rf.str_len, lr)
    local n = lr:uint()
    if n == 0 then
        self:error(li, re.bad_field, "bad-string: empty " .. what)
        return "", li
    end
    local r = self:take(n)
    if not r then
        return nil
    end
    local raw = r:raw()
    local item = tree:add_packet_field(field, r, ENC_UTF_8)
    if not valid_utf8(raw) then
        self:error(item, re.bad_field, "bad-string: " .. what .. " is not UTF-8")
    end
    return raw, item
end

function Reader:done()
    if not self.stopped and self.pos < self.stop then
        local item = self.tree:add(rf.undecoded, self.tvb(self.pos, self.stop - self.pos))
        self:error(item, re.trailing, string.format(
            "trailing-bytes: %d octets after the fields", self.stop - self.pos))
    end
end

local function check_backup_id(r, id, item)
    if id == 0 then
        r:error(item, re.bad_field, "bad-backup-id: backup-id 0 not in 1..65535")
    end
end

local function is_multicast(u)
    return u >= 0xE0000000 and u <= 0xEFFFFFFF
end

local function dissect_open(r)
    local device = r:str8(rf.open_device, "device name")
    r:ipv4(rf.open_source)
    local count = r:uint(rf.open_profile_count, 2)
    local names, ids = {}, {}
    for i = 1, count or 0 do
        if r.stopped then
            break
        end
        if r.pos >= r.stop then
            r:take(1) -- truncated
            break
        end
        local start = r.pos
        local pt = r.tree:add(rf.open_profile, r.tvb(start, 1))
        local name, ni = r:str8(rf.profile_name, "profile name", pt)
        local bid, bi = r:uint(rf.profile_backup_id, 2, pt)
        check_backup_id(r, bid, bi)
        local nsvc, si = r:uint(rf.profile_service_count, 1, pt)
        if nsvc == 0 then
            r:error(si, re.bad_field, "bad-count: 0 service types")
        end
        local svcs, seen = {}, {}
        for _ = 1, nsvc or 0 do
            local s, item = r:str8(rf.profile_service, "service type", pt)
            if not s then
                break
            end
            if seen[s] then
                r:error(item, re.bad_field, "bad-service: duplicate service type " .. s)
            end
            seen[s] = true
            svcs[#svcs + 1] = s
        end
        pt:set_len(r.pos - start)
        pt:set_text(string.format("Profile %d: %s, backup-id %s, services %s", i,
            name or "?", bid and tostring(bid) or "?", table.concat(svcs, ",")))
        if name and names[name] then
            r:error(ni, re.bad_field, "duplicate-profile: profile name " .. name)
        elseif bid and ids[bid] then
            r:error(bi, re.bad_field, "duplicate-profile: backup-id " .. bid)
        end
        if name then names[name] = true end
        if bid then ids[bid] = true end
    end
    return string.format("%s, %s profiles", device or "?", count and tostring(count) or "?")
end

local function dissect_entry(r)
    local bid, bi = r:uint(rf.entry_backup_id, 2)
    check_backup_id(r, bid, bi)
    local service, si = r:str8(rf.entry_service, "service")
    if service and service ~= "igmp" then
        r:error(si, re.bad_field, "bad-service: service " .. service)
        r:abandon() -- the key and value layouts are the service's
    end
    local op, oi = r:uint(rf.entry_op, 1)
    if op and not rbs_ops[op] then
        r:error(oi, re.bad_field, "bad-op: op " .. op)
        r:abandon()
    end
    if r.stopped then
        return nil
    end
    local iface = r:str8(rf.entry_interface, "interface")
    local group, gi, gu = r:ipv4(rf.entry_group)
    if gu and not is_multicast(gu) then
        r:error(gi, re.bad_field,
            "bad-group: " .. tostring(group) .. " is not a multicast address")
    end
    local summary = string.format("%s %s %s", rbs_ops[op], iface or "?",
        group and tostring(group) or "?")
    if op ~= 3 then
        local mode, mi = r:uint(rf.entry_mode, 1)
        if mode and not rbs_modes[mode] then
            r:error(mi, re.bad_field, "bad-mode: filter mode " .. mode)
        end
        r:ipv4(rf.entry_reporter)
        r:uint(rf.entry_uptime, 4)
        local count = r:uint(rf.entry_source_count, 2)
        if count == 0 and mode == 1 then
            r:error(mi, re.bad_field, "bad-mode: INCLUDE with no sources (that is a DELETE)")
        end
        local seen = {}
        for _ = 1, count or 0 do
            local s, item, u = r:ipv4(rf.entry_source)
            if not s then
                break
            end
            if u == 0 or u == 0xFFFFFFFF or is_multicast(u) then
                r:error(item, re.bad_field,
                    "bad-source: " .. tostring(s) .. " is not a unicast source")
            elseif seen[u] then
                r:error(item, re.bad_field, "bad-source: duplicate source " .. tostring(s))
            end
            seen[u] = true
        end
        summary = string.format("%s %s, %s sources", summary, rbs_modes[mode] or "?",
            count and tostring(count) or "?")
    end
    return summary
end

local function dissect_batch(r)
    local bid, bi = r:uint(rf.batch_backup_id, 2)
    check_backup_id(r, bid, bi)
    local count = r:uint(rf.batch_count, 4)
    return string.format("backup-id %s, %s entries", bid and tostring(bid) or "?",
        count and tostring(count) or "?")
end

local function dissect_ack(r)
    local seq = r:uint(rf.ack_seq, 4)
    return "up to seq " .. (seq and tostring(seq) or "?")
end

local function dissect_error(r)
    local code, ci = r:uint(rf.error_code, 2)
    if code and not rbs_error_codes[code] then
        r:error(ci, re.bad_field, "bad-error-code: code " .. code)
    end
    local bid = r:uint(rf.error_backup_id, 2)
    local n, li = r:uint(rf.error_text_len, 2)
    local text = ""
    if n and n > 0 then
        local tr = r:take(n)
        if tr then
            text = tr:raw()
            local ti = r.tree:add_packet_field(rf.error_text, tr, ENC_UTF_8)
            if not valid_utf8(text) then
                r:error(ti, re.bad_field, "bad-string: error text is not UTF-8")
            end
        end
    end
    if n and n > 1024 then
        r:error(li, re.bad_field, "bad-string: error text over 1024 octets")
    end
    return string.format("%s, backup-id %s, \"%s\"",
        code and (rbs_error_codes[code] or tostring(code)) or "?",
        bid and tostring(bid) or "?", text)
end

local payload_dissectors = {
    [1] = dissect_open, [3] = dissect_batch, [4] = dissect_entry, [5] = dissect_batch,
    [6] = dissect_ack, [8] = dissect_error,
}

-- The header fields present in [offset, offset + have); returns the record's tree item.
local function add_header(tvb, tree, offset, have)
    local t = tree:add(rbs, tvb(offset, have))
    local items = {}
    if have >= 2 then items.magic = t:add(rf.magic, tvb(offset, 2)) end
    if have >= 3 then items.version = t:add(rf.version, tvb(offset + 2, 1)) end
    if have >= 4 then items.type = t:add(rf.type, tvb(offset + 3, 1)) end
    if have >= 6 then
        items.flags = t:add(rf.flags, tvb(offset + 4, 2))
        items.flags:add(rf.flag_ack_request, tvb(offset + 4, 2))
        items.flags:add(rf.flag_holdings, tvb(offset + 4, 2))
        items.flags:add(rf.flag_reserved, tvb(offset + 4, 2))
    end
    if have >= 8 then items.reserved = t:add(rf.reserved, tvb(offset + 6, 2)) end
    if have >= 12 then items.length = t:add(rf.length, tvb(offset + 8, 4)) end
    if have >= 16 then items.seq = t:add(rf.seq, tvb(offset + 12, 4)) end
    return t, items
end

-- What the codec's check_header refuses from the first octets: magic, version, type.
local function framing_error(tvb, offset, have)
    if have >= 2 and tvb(offset, 2):uint() ~= RBS_MAGIC then
        return re.bad_magic, "bad-magic: 0x" .. tohex(tvb:raw(offset, 2)), "magic"
    end
    if have >= 3 and tvb(offset + 2, 1):uint() ~= 1 then
        return re.bad_version, "bad-version: version " .. tvb(offset + 2, 1):uint(), "version"
    end
    return nil
end

local function dissect_record(tvb, pinfo, tree, offset, reclen)
    local t, items = add_header(tvb, tree, offset, reclen)
    local rtype = tvb(offset + 3, 1):uint()
    local flags = tvb(offset + 4, 2):uint()
    local reserved = tvb(offset + 6, 2):uint()
    local seq = tvb(offset + 12, 4):uint()
    local name = rbs_types[rtype] or ("type " .. rtype)
    local r = new_reader(tvb, t, offset + RBS_HEADER_LEN, offset + reclen)
    if band(flags, 0xfffc) ~= 0 then
        r:error(items.flags, re.bad_flags, string.format("bad-flags: 0x%04x", flags))
    elseif band(flags, 2) ~= 0 and (rtype < 3 or rtype > 5) then
        r:error(items.flags, re.bad_flags, "bad-flags: HOLDINGS on a record that is not a "
            .. "batch record")
    end
    if reserved ~= 0 then
        r:error(items.reserved, re.bad_reserved, string.format("bad-reserved: 0x%04x", reserved))
    end
    local summary
    if not rbs_types[rtype] then
        r:error(items.type, re.bad_type, "bad-type: type " .. rtype)
        r:abandon()
    else
        local fn = payload_dissectors[rtype]
        if fn then
            summary = fn(r)
        end
        r:done()
    end
    local label = string.format(", %s seq %d", name, seq)
    if band(flags, 2) ~= 0 then
        label = label .. " [HOLDINGS]"
    end
    if band(flags, 1) ~= 0 then
        label = label .. " [ACK_REQUEST]"
    end
    if summary then
        label = label .. ": " .. summary
    end
    if r.reason then
        label = label .. " [MALFORMED: " .. r.reason .. "]"
    end
    t:append_text(label)
    if r.reason then
        return name .. " [MALFORMED: " .. r.reason .. "]"
    end
    return name
end

function rbs.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    if n == 0 then
        return 0
    end
    pinfo.cols.protocol = "RBS"
    local fin_field = f_tcp_fin()
    local fin = fin_field and fin_field.value
    local names = {}
    local offset = 0
    local function set_info()
        if #names == 0 then
            return
        end
        -- TCP may call us more than once for one frame (the rest after a reassembled record):
        -- extend what an earlier call of this frame wrote.
        -- (TCP may have fenced the column after that text, so append rather than set.)
        if tostring(pinfo.cols.info):sub(1, 5) == "RBS: " then
            pinfo.cols.info:append(", " .. table.concat(names, ", "))
        else
            pinfo.cols.info = "RBS: " .. table.concat(names, ", ")
        end
    end
    while offset < n do
        local have = n - offset
        local ferr, ftext = framing_error(tvb, offset, have)
        local rtype = have >= 4 and tvb(offset + 3, 1):uint() or nil
        if ferr then
            -- Not a record boundary: the rest of this segment cannot be framed, and nothing
            -- after the wrong octet is read as a field.
            local shown = ferr == re.bad_magic and 2 or 3
            local t, items = add_header(tvb, tree, offset, shown)
            if have > shown then
                t:add(rf.undecoded, tvb(offset + shown, have - shown))
            end
            t:set_len(have)
            local item = ferr == re.bad_magic and items.magic or items.version
            item:add_proto_expert_info(ferr, ftext)
            t:append_text(" [MALFORMED: " .. ftext:match("^[%w-]+") .. "]")
            names[#names + 1] = "[MALFORMED: " .. ftext:match("^[%w-]+") .. "]"
            offset = n
            break
        end
        local plen = have >= 12 and tvb(offset + 8, 4):uint() or nil
        if plen and plen > RBS_MAX_PAYLOAD then
            local t, items = add_header(tvb, tree, offset, math.min(have, RBS_HEADER_LEN))
            if have > RBS_HEADER_LEN then
                t:add(rf.undecoded, tvb(offset + RBS_HEADER_LEN, have - RBS_HEADER_LEN))
            end
            t:set_len(have)
            items.length:add_proto_expert_info(re.oversized, string.format(
                "oversized: record of %d octets (at most 65536)", RBS_HEADER_LEN + plen))
            t:append_text(" [MALFORMED: oversized]")
            names[#names + 1] = (rbs_types[rtype] or "?") .. " [MALFORMED: oversized]"
            offset = n
            break
        end
        local reclen = plen and RBS_HEADER_LEN + plen or nil
        if not reclen or have < reclen then
            if fin then
                -- The peer closed in the middle of this record.
                local t, items = add_header(tvb, tree, offset, math.min(have, RBS_HEADER_LEN))
                if have > RBS_HEADER_LEN then
                    t:add(rf.undecoded, tvb(offset + RBS_HEADER_LEN, have - RBS_HEADER_LEN))
                end
                t:set_len(have)
                local text = reclen and string.format(
                    "truncated: connection closed %d octets into a record of %d", have, reclen)
                    or string.format("truncated: connection closed %d octets into a header", have)
                t:add_proto_expert_info(re.truncated_record, text)
                t:append_text(", " .. (rbs_types[rtype] or "?") .. " [MALFORMED: truncated]")
                names[#names + 1] = (rbs_types[rtype] or "?") .. " [MALFORMED: truncated]"
                offset = n
                break
            end
            if pinfo.can_desegment == 0 then
                -- TCP reassembly is off ("Allow subdissector to reassemble TCP streams"):
                -- show the start of the record; its rest arrives as an unframed segment.
                local t = add_header(tvb, tree, offset, math.min(have, RBS_HEADER_LEN))
                if have > RBS_HEADER_LEN then
                    t:add(rf.undecoded, tvb(offset + RBS_HEADER_LEN, have - RBS_HEADER_LEN))
                end
                t:set_len(have)
                t:append_text(", " .. (rbs_types[rtype] or "?")
                    .. " [partial: enable TCP reassembly]")
                names[#names + 1] = (rbs_types[rtype] or "?") .. " [partial]"
                offset = n
                break
            end
            pinfo.desegment_offset = offset
            pinfo.desegment_len = reclen and (reclen - have) or DESEGMENT_ONE_MORE_SEGMENT
            set_info()
            return n
        end
        names[#names + 1] = dissect_record(tvb, pinfo, tree, offset, reclen)
        offset = offset + reclen
    end
    set_info()
    return offset
end

-- ---------------------------------------------------------------------------------------------
-- Registration on the preferred ports (re-registered when a preference changes).
-- ---------------------------------------------------------------------------------------------
local registered = {}

local function register(table_name, proto, port)
    local dt = DissectorTable.get(table_name)
    local old = registered[table_name]
    if old == port then
        return
    end
    if old and old ~= 0 then
        dt:remove(old, proto)
    end
    if port ~= 0 then
        dt:add(port, proto)
    end
    registered[table_name] = port
end

-- Offer both in Decode As... for other ports too (where this Wireshark has the call).
for table_name, proto in pairs({ ["udp.port"] = etrunk, ["tcp.port"] = rbs }) do
    local dt = DissectorTable.get(table_name)
    if dt.add_for_decode_as then
        dt:add_for_decode_as(proto)
    end
end

function etrunk.prefs_changed()
    register("udp.port", etrunk, etrunk.prefs.port)
end

function rbs.prefs_changed()
    register("tcp.port", rbs, rbs.prefs.port)
end

register("udp.port", etrunk, etrunk.prefs.port)
register("tcp.port", rbs, rbs.prefs.port)
