#ifndef SENSORFLEET_CSQLITE_SHIM_H
#define SENSORFLEET_CSQLITE_SHIM_H

// The system's SQLite (libsqlite3-dev) for the durable outbox. Only
// Sources/SensorFleetCore/State/SQLiteDatabase.swift imports it (and a test that damages a file).
#include <sqlite3.h>

#endif
