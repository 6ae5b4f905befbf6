/* hark.h: everything a plugin or an embedding program may use, in one include. */
#pragma once

#include "hark/version.h"
#include "hark/plugin.h"
#include "hark/context.h"
#include "hark/command.h"
#include "hark/frontend.h"
#include "hark/config.h"
#include "hark/control.h"
#include "hark/identity.h"
#include "hark/wire.h"
#include "hark/node.h"
#include "hark/settings.h"
#include "hark/store.h"
#include "hark/certificate.h"
#include "hark/hostcache.h"
#include "hark/codec.h"
#include "hark/media.h"
