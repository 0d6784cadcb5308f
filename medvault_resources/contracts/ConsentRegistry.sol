// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ConsentRegistry
/// @notice Patient consents for medvault shares on a permissioned chain.
/// @dev No PHI and no content address is ever stored or logged: a consent is named by
///      consent_id = HMAC-SHA256(share_key, "medvault/consent/v1"), which only holders of the share link can
///      compute, and carries only the SHA-256 of the canonical FHIR Consent (scopeHash).
///      A consent belongs to its patient: it is stored under (patient, consentId), and every read, revoke and
///      receipt names the patient. Anyone who sees a link knows its id, so an id alone must never decide whose
///      consent is meant: a squatter registering the same id under their own key only fills their own entry.
///      Patients never need a funded account: they sign EIP-712 typed data and a member relays it.
contract ConsentRegistry {
    // Two storage slots per consent. A grant must write every slot it uses from zero (22.1k gas each), so the
    // slot count decides whether a grant stays under 100k gas: three slots (a full bytes32 scope hash on its own)
    // cost about 104k. The full scopeHash is in the patient's signature and in the ConsentGranted event; storage
    // keeps its first 96 bits, which is what isActive-time checks compare (a second preimage on 96 bits of
    // SHA-256 is out of reach).
    struct Consent {
        address patient;    // slot 0
        uint40 grantedAt;   // slot 0 (uint40 seconds last until the year 36812)
        uint40 expiresAt;   // slot 0
        bool revoked;       // slot 0
        address grantee;    // slot 1; zero address = bearer link (anyone holding the link)
        bytes12 scopeTag;   // slot 1; first 12 bytes of scopeHash
    }

    struct Practitioner {
        bytes32 didHash;
        bool active;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(bytes32 consentId,address patient,address grantee,uint64 expiresAt,bytes32 scopeHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(bytes32 consentId,address patient,uint256 nonce,uint256 deadline)");
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "AccessReceipt(bytes32 consentId,address patient,address accessor,uint64 accessedAt,uint256 nonce)"
    );
    bytes32 public constant CANCEL_TYPEHASH =
        keccak256("CancelNonces(address patient,uint256 nonceFloor,uint256 deadline)");

    // secp256k1n / 2: signatures with a higher s are the malleable twin of a valid one.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    // Computed at deploy; recomputed if the chain id ever changes (a fork), so a signature for one chain never
    // verifies on another.
    bytes32 private immutable cachedDomainSeparator;
    uint256 private immutable cachedChainId;

    address public admin;
    mapping(address => bool) public isMember;
    mapping(address => Practitioner) public practitioners;
    // keccak256(abi.encode(patient, consentId)) -> consent; see _consent.
    mapping(bytes32 => Consent) private consents;
    // A patient raises the floor to void every signed-but-unsubmitted grant or revoke below it (a lost laptop's
    // outbox). Reading it is a cold SLOAD, writing it happens only on cancellation.
    mapping(address => uint256) public nonceFloor;
    // Merkle root of a batch of access receipts -> block timestamp when anchored.
    mapping(bytes32 => uint64) public anchoredAt;

    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    event MemberAdded(address indexed member, address indexed by);
    event MemberRemoved(address indexed member, address indexed by);
    event PractitionerRegistered(address indexed practitioner, bytes32 didHash, address indexed by);
    event PractitionerDeactivated(address indexed practitioner, address indexed by);
    event ConsentGranted(
        bytes32 indexed consentId,
        address indexed patient,
        address indexed grantee,
        uint64 expiresAt,
        bytes32 scopeHash,
        uint256 nonce
    );
    event ConsentRevoked(bytes32 indexed consentId, address indexed patient, uint256 nonce);
    event NoncesCancelled(address indexed patient, uint256 nonceFloor);
    event AccessLogged(
        bytes32 indexed consentId,
        address indexed patient,
        address indexed accessor,
        uint64 accessedAt,
        bytes32 receiptDigest
    );
    event BatchAnchored(bytes32 indexed root, uint32 count, address indexed submitter);

    error NotAdmin();
    error NotMember();
    error ZeroAddress();
    error SignatureExpired();
    error InvalidSignature();
    error NonceCancelled();
    error ConsentExists();
    error UnknownConsent();
    error AlreadyRevoked();
    error NotPatient();
    error ExpiryInPast();
    error GranteeNotPractitioner();
    error EmptyBatch();
    error RootAlreadyAnchored();

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyMember() {
        if (!isMember[msg.sender]) revert NotMember();
        _;
    }

    constructor() {
        admin = msg.sender;
        isMember[msg.sender] = true;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
        emit AdminTransferred(address(0), msg.sender);
        emit MemberAdded(msg.sender, msg.sender);
    }

    // ---- administration ---------------------------------------------------------------------------------------

    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit AdminTransferred(admin, newAdmin);
        admin = newAdmin;
    }

    function addMember(address member) external onlyAdmin {
        if (member == address(0)) revert ZeroAddress();
        isMember[member] = true;
        emit MemberAdded(member, msg.sender);
    }

    function removeMember(address member) external onlyAdmin {
        isMember[member] = false;
        emit MemberRemoved(member, msg.sender);
    }

    function registerPractitioner(address practitioner, bytes32 didHash) external onlyMember {
        if (practitioner == address(0)) revert ZeroAddress();
        practitioners[practitioner] = Practitioner(didHash, true);
        emit PractitionerRegistered(practitioner, didHash, msg.sender);
    }

    function deactivatePractitioner(address practitioner) external onlyMember {
        practitioners[practitioner].active = false;
        emit PractitionerDeactivated(practitioner, msg.sender);
    }

    // ---- consents ---------------------------------------------------------------------------------------------

    /// @notice Record a consent the patient signed. A consent id is single use per patient: once granted (even if
    ///         later revoked) it can never be granted again by that patient, so a replayed grant signature always
    ///         fails. Another key granting the same id writes its own entry and cannot block this one.
    function grant(
        bytes32 consentId,
        address patient,
        address grantee,
        uint64 expiresAt,
        bytes32 scopeHash,
        uint256 nonce,
        uint256 deadline,
        bytes32 r,
        bytes32 vs
    ) external onlyMember {
        if (block.timestamp > deadline) revert SignatureExpired();
        if (expiresAt <= block.timestamp) revert ExpiryInPast();
        Consent storage c = _consent(patient, consentId);
        if (c.patient != address(0)) revert ConsentExists();
        if (nonce < nonceFloor[patient]) revert NonceCancelled();
        bytes32 structHash = keccak256(
            abi.encode(GRANT_TYPEHASH, consentId, patient, grantee, expiresAt, scopeHash, nonce, deadline)
        );
        _requireSigner(structHash, patient, r, vs);
        c.patient = patient;
        c.grantedAt = uint40(block.timestamp);
        // Anything past uint40 (e.g. a "no expiry" signed as uint64 max) is stored as the uint40 maximum.
        c.expiresAt = expiresAt > type(uint40).max ? type(uint40).max : uint40(expiresAt);
        c.grantee = grantee;
        c.scopeTag = bytes12(scopeHash);
        emit ConsentGranted(consentId, patient, grantee, expiresAt, scopeHash, nonce);
    }

    /// @notice Revoke a patient's consent. Only a signature by that patient is accepted; revoking twice fails,
    ///         so a replayed revoke signature changes nothing.
    function revoke(address patient, bytes32 consentId, uint256 nonce, uint256 deadline, bytes32 r, bytes32 vs)
        external
        onlyMember
    {
        if (block.timestamp > deadline) revert SignatureExpired();
        Consent storage c = _consent(patient, consentId);
        if (patient == address(0) || c.patient != patient) revert UnknownConsent();
        if (c.revoked) revert AlreadyRevoked();
        if (nonce < nonceFloor[patient]) revert NonceCancelled();
        bytes32 structHash = keccak256(abi.encode(REVOKE_TYPEHASH, consentId, patient, nonce, deadline));
        if (_recover(_hashTypedData(structHash), r, vs) != patient) revert NotPatient();
        c.revoked = true;
        emit ConsentRevoked(consentId, patient, nonce);
    }

    /// @notice Void every signed grant or revoke of this patient whose nonce is below `floor`.
    function cancelNonces(address patient, uint256 floor, uint256 deadline, bytes32 r, bytes32 vs)
        external
        onlyMember
    {
        if (block.timestamp > deadline) revert SignatureExpired();
        if (floor <= nonceFloor[patient]) revert NonceCancelled();
        bytes32 structHash = keccak256(abi.encode(CANCEL_TYPEHASH, patient, floor, deadline));
        _requireSigner(structHash, patient, r, vs);
        nonceFloor[patient] = floor;
        emit NoncesCancelled(patient, floor);
    }

    /// @notice Whether `accessor` may open the share `patient` consented to now. A directed consent also needs its
    ///         grantee to still be an active registered practitioner, so deactivating a practitioner takes effect
    ///         at once.
    function isActive(address patient, bytes32 consentId, address accessor) external view returns (bool) {
        Consent storage c = _consent(patient, consentId);
        if (c.patient == address(0) || c.revoked || block.timestamp >= c.expiresAt) return false;
        address grantee = c.grantee;
        if (grantee == address(0)) return true;
        return grantee == accessor && practitioners[grantee].active;
    }

    /// @notice The consent `patient` recorded under `consentId`; all zero when that patient recorded none.
    function getConsent(address patient, bytes32 consentId)
        external
        view
        returns (
            address recordedPatient,
            address grantee,
            uint64 grantedAt,
            uint64 expiresAt,
            bytes12 scopeTag,
            bool revoked
        )
    {
        Consent storage c = _consent(patient, consentId);
        return (c.patient, c.grantee, c.grantedAt, c.expiresAt, c.scopeTag, c.revoked);
    }

    // ---- access receipts --------------------------------------------------------------------------------------

    /// @notice Log one access receipt signed by the accessor. It is a fact, not a permission, so it is accepted
    ///         even if the consent was revoked after the access; duplicates carry the same digest and auditors
    ///         count each digest once.
    function logAccess(
        address patient,
        bytes32 consentId,
        address accessor,
        uint64 accessedAt,
        uint256 nonce,
        bytes32 r,
        bytes32 vs
    ) external onlyMember {
        if (patient == address(0) || _consent(patient, consentId).patient != patient) revert UnknownConsent();
        bytes32 digest = receiptDigest(consentId, patient, accessor, accessedAt, nonce);
        if (accessor == address(0) || _recover(digest, r, vs) != accessor) revert InvalidSignature();
        emit AccessLogged(consentId, patient, accessor, accessedAt, digest);
    }

    /// @notice Anchor the Merkle root of many receipts (leaf = keccak256(receipt EIP-712 digest), sorted-pair
    ///         keccak nodes). Each receipt's proof stays in the patient's vault.
    function anchorBatch(bytes32 root, uint32 count) external onlyMember {
        if (count == 0 || root == bytes32(0)) revert EmptyBatch();
        if (anchoredAt[root] != 0) revert RootAlreadyAnchored();
        anchoredAt[root] = uint64(block.timestamp);
        emit BatchAnchored(root, count, msg.sender);
    }

    /// @notice When the receipt with this EIP-712 digest was anchored under `root`, or 0 if the proof fails.
    function receiptAnchoredAt(bytes32 root, bytes32 receiptHash, bytes32[] calldata proof)
        external
        view
        returns (uint64)
    {
        bytes32 node = keccak256(abi.encode(receiptHash));
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sib = proof[i];
            node = node < sib ? keccak256(abi.encode(node, sib)) : keccak256(abi.encode(sib, node));
        }
        return node == root ? anchoredAt[root] : 0;
    }

    // ---- EIP-712 ----------------------------------------------------------------------------------------------

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == cachedChainId ? cachedDomainSeparator : _buildDomainSeparator();
    }

    function receiptDigest(bytes32 consentId, address patient, address accessor, uint64 accessedAt, uint256 nonce)
        public
        view
        returns (bytes32)
    {
        return _hashTypedData(
            keccak256(abi.encode(RECEIPT_TYPEHASH, consentId, patient, accessor, accessedAt, nonce))
        );
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("medvault ConsentRegistry"), keccak256("1"), block.chainid, address(this)
            )
        );
    }

    /// @dev The one place a consent's storage is found: by its patient and its id together.
    function _consent(address patient, bytes32 consentId) private view returns (Consent storage) {
        return consents[keccak256(abi.encode(patient, consentId))];
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function _requireSigner(bytes32 structHash, address expected, bytes32 r, bytes32 vs) private view {
        if (expected == address(0) || _recover(_hashTypedData(structHash), r, vs) != expected) {
            revert InvalidSignature();
        }
    }

    /// @dev EIP-2098 compact signature (r, yParity<<255 | s): one calldata word less per signed call.
    ///      Returns the zero address for any malformed or malleable signature.
    function _recover(bytes32 digest, bytes32 r, bytes32 vs) private pure returns (address) {
        uint256 s = uint256(vs) & ((1 << 255) - 1);
        if (s > HALF_ORDER) return address(0);
        uint8 v = uint8((uint256(vs) >> 255) + 27);
        return ecrecover(digest, v, r, bytes32(s));
    }
}
