# natdiscovery-verdict.awk: coturn's `turnutils_natdiscovery -m -f` output as one line,
# "mapping=X filtering=Y", "udp-blocked" when every test timed out, or "no-verdict"
# (with whatever was found) otherwise. Run with -v rc=<natdiscovery's exit status>.
# Shared by test-netlab.sh and test-natprobe.sh.
/^No NAT!/                                        { m = "none" }
/^NAT with Endpoint Independent Mapping!/         { m = "endpoint-independent" }
/^NAT with Address Dependent Mapping!/            { m = "address-dependent" }
/^NAT with Address and Port Dependent Mapping!/   { m = "address-and-port-dependent" }
/^NAT with Endpoint Independent Filtering!/       { f = "endpoint-independent" }
/^NAT with Address Dependent Filtering!/          { f = "address-dependent" }
/^NAT with Address and Port Dependent Filtering!/ { f = "address-and-port-dependent" }
/^STUN receive timeout/                           { t++ }
/UDP reflexive addr/                              { r++ }
END {
    if (m != "" && f != "") print "mapping=" m " filtering=" f
    else if (m == "" && f == "" && r == 0 && t > 0 && rc == 0) print "udp-blocked"
    else printf "no-verdict (mapping=%s filtering=%s timeouts=%d exit=%s)\n", m, f, t, rc
}
