/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-cases.h: the theme files of test-overlay register their cases (overlay-lab.h). */
#pragma once

/* Strangers at an SN's doors: bad input, caps, failed handshakes, amplification. */
void overlay_doors_add_cases(void);
/* A malicious SN and SN peers: lists, claims, STUN_RELAY. */
void overlay_peers_add_cases(void);
/* The SN's login tunnels: clients with the same tunnel ids. */
void overlay_tunnels_add_cases(void);
