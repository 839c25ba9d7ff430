//! Calls (extrinsics) and query results shared by the dev chain and its clients.
