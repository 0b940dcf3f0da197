//! What to do after a failed provider request, shared by the import runner and the sync
//! workers: wait and send it again, or give up.
