import type {GroupStrategy, RestartPolicy} from './policy.js';
import type {VmDeath} from '../../types.js';

/** A VM of a supervision group, as the group machine keeps it. */
export interface GroupMember {
	cid: number;
	/** The member's own policy: whether a death of it counts as a failure. */
	policy: RestartPolicy;
	/** Started (by the caller, or restarted by the group) and not yet dead. */
	live: boolean;
	/** A stop or kill was asked of it: its next death is its last. */
	ending: boolean;
	/** Its current life was started by the group: a failed start then counts as a failure. */
	restarted: boolean;
	lastDeath: VmDeath | undefined;
}

/**
 * The members a failure of `cid` restarts, in the group's order (the order they were created, which
 * is the order they are started in): OTP's one_for_one, one_for_all and rest_for_one. Members that
 * were never started stay as they are.
 */
export function membersToRestart(members: readonly GroupMember[], cid: number, strategy: GroupStrategy): number[] {
	const failed = members.findIndex(member => member.cid === cid);
	return members
		.filter((member, index) => {
			if (member.cid === cid) {
				return true;
			}

			if (!member.live || member.ending) {
				return false;
			}

			return strategy === 'one-for-all' || (strategy === 'rest-for-one' && index > failed);
		})
		.map(member => member.cid);
}
