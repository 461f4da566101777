#!/usr/bin/env bash
# ovs_vxlan6: ovs_vxlan.sh over an IPv6 underlay (lwvhostd's VXLAN port
# against Open vSwitch's userspace datapath, VTEPs 2001:db8:50::1 and ::2,
# inner MTU 1430). See ovs_vxlan.sh. Exit 0 pass, 77 skip, else fail.
LWV_OVS_FAMILY=6 exec bash "$(dirname "$0")/ovs_vxlan.sh"
