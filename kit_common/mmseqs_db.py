"""What an MMseqs2 database's .dbtype says, read where both alphafold-data (preparing) and the
searches (--gpu) need it: whether makepaddedseqdb made it MMseqs2-GPU's."""
import struct

DBTYPE_EXTENDED_GPU = 8   # MMseqs2's Parameters.h: the extended .dbtype bit of a padded database


def padded(prefix):
    """Whether the database at prefix is padded for MMseqs2-GPU (DBReader::getExtendedDbtype: the
    upper 16 bits of its little-endian .dbtype)."""
    try:
        with open(prefix + '.dbtype', 'rb') as f:
            dbtype = struct.unpack('<I', f.read(4))[0]
    except (OSError, struct.error):
        return False
    return bool((dbtype >> 16) & DBTYPE_EXTENDED_GPU)
