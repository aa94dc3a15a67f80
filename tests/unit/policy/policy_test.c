/*
 * policy_test.c — table-driven evaluation cases for the IAM policy engine.
 *
 * Each row: a policy (a full document, or just a Condition block that is
 * wrapped into an Allow statement for Principal "*", Action "kms:*",
 * Resource "*"), a request context, and the expected outcome:
 *   'A' allowed (directly)   'a' allowed through the account (root) only
 *   'D' explicit deny        'N' no statement applies (implicit deny)
 *   'M' refused as malformed 'L' refused as too large
 *
 * Request context syntax: items separated by ';'
 *   @action=kms:Decrypt  @principal=ARN  @account=ID  @role=ARN
 *   @resource=ARN        @service=kms.amazonaws.com  @kind=identity|trust
 *   ec.K=V   an encryption context pair (kms:EncryptionContext:K and
 *            kms:EncryptionContextKeys)
 *   rt.K=V   a resource tag (aws:ResourceTag/K)
 *   qt.K=V   a request tag (aws:RequestTag/K and aws:TagKeys)
 *   K=V      a single value;  K=V1|V2  a multi-valued key;  K=[]  empty list
 * Defaults: user alice of 111122223333 calling kms:Encrypt on
 * arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "testlib.h"

#define ALICE "arn:aws:iam::111122223333:user/alice"
#define BOB "arn:aws:iam::111122223333:user/bob"
#define ROOT1 "arn:aws:iam::111122223333:root"
#define ROLE "arn:aws:iam::111122223333:role/app"
#define SESSION "arn:aws:sts::111122223333:assumed-role/app/s1"
#define EXT "arn:aws:iam::444455556666:user/carol"
#define KEY "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

struct tcase {
	const char *policy;
	const char *ctx;
	char expect;
};

#define ST(body) "{\"Version\":\"2012-10-17\",\"Statement\":[" body "]}"

static const struct tcase cases[] = {
	/* ---- Effect, Principal ---- */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*"
	    "\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*"
	    "\"}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"kms:Encrypt\","
	    "\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ALICE
	    "\"},\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" BOB
	    "\"},\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'a'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"111122223333\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "", 'a'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" ROOT1, 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"111122223333\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "@principal=" EXT ";@account=444455556666", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"444455556666\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "@principal=" EXT ";@account=444455556666", 'a'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"" BOB "\",\"" ALICE
	    "\"]},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROLE
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" SESSION ";@role=" ROLE, 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" SESSION
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" SESSION ";@role=" ROLE, 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:sts::111122223333:assumed-role/"
	    "app/other\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" SESSION ";@role=" ROLE, 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:role/"
	    "other\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" SESSION ";@role=" ROLE, 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROLE
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"kms.amazonaws.com\"},\"Action\":"
	    "\"kms:*\",\"Resource\":\"*\"}"),
	 "@service=kms.amazonaws.com", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"kms.amazonaws.com\"},\"Action\":"
	    "\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Deny\",\"NotPrincipal\":{\"AWS\":\"" ALICE
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Deny\",\"NotPrincipal\":{\"AWS\":\"" ALICE
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" BOB, 'D'},
	{ST("{\"Effect\":\"Deny\",\"NotPrincipal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Allow\",\"NotPrincipal\":{\"AWS\":\"" BOB
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@principal=" EXT ";@account=444455556666", 'N'},
	/* explicit deny wins over allow, in any order */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"},{"
	    "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*"
	    "\"}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*"
	    "\"},{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*"
	    "\"}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*"
	    "\"},{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*"
	    "\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROOT1
	    "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Principal\":{"
	    "\"AWS\":\"" ALICE "\"},\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}"),
	 "", 'A'},

	/* ---- Action / NotAction ---- */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@action=kms:ScheduleKeyDeletion", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}"),
	 "@action=kms:Decrypt", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:Generate*\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:GenerateDataKey", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:Generate*\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:GenerateDataKeyWithoutPlaintext", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:Generate*\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:Encrypt", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:ReEncrypt*\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:ReEncryptFrom", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:ReEncrypt*\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:ReEncryptTo", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"KMS:encrypt\",\"Resource\":\"*"
	    "\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:?ncrypt\",\"Resource\":\"*"
	    "\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:?ncrypt\",\"Resource\":\"*"
	    "\"}"),
	 "@action=kms:Decrypt", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":[\"kms:Decrypt\",\"kms:Encrypt\"]"
	    ",\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":[\"kms:Decrypt\",\"kms:Describe*"
	    "\"],\"Resource\":\"*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"NotAction\":\"kms:Decrypt\",\"Resource\":"
	    "\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"NotAction\":\"kms:Decrypt\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:Decrypt", 'N'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"NotAction\":[\"kms:Encrypt\",\"kms:"
	    "Describe*\"],\"Resource\":\"*\"}"),
	 "@action=kms:ScheduleKeyDeletion", 'D'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"NotAction\":[\"kms:Encrypt\",\"kms:"
	    "Describe*\"],\"Resource\":\"*\"}"),
	 "@action=kms:DescribeKey", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:Create*\",\"Resource\":\"*"
	    "\"}"),
	 "@action=kms:CreateGrant", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"*\"}"),
	 "", 'N'},

	/* ---- Resource / NotResource ---- */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"" KEY
	    "\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:"
	    "kms:us-east-1:111122223333:key/*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:"
	    "kms:*:111122223333:key/*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:"
	    "kms:eu-west-1:111122223333:key/*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:"
	    "kms:us-east-1:444455556666:key/*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:"
	    "kms:us-east-1:111122223333:key/1234ABCD-*\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":[\"arn:"
	    "aws:kms:us-east-1:111122223333:alias/*\",\"" KEY "\"]}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"NotResource\":\"" KEY
	    "\"}"),
	 "", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"NotResource\":\"arn:"
	    "aws:kms:*:*:key/other\"}"),
	 "", 'A'},
	/* a key-policy statement without Resource has no effect (API_PutKeyPolicy.html) */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\"}"), "", 'N'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:*\"},{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:CreateKey\",\"Resource\":"
	    "\"*\"}"),
	 "@action=kms:CreateKey;@resource=*", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:CreateKey\",\"Resource\":"
	    "\"" KEY "\"}"),
	 "@action=kms:CreateKey;@resource=*", 'N'},

	/* ---- identity policies ---- */
	{ST("{\"Effect\":\"Allow\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}"),
	 "@kind=identity", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}"),
	 "@kind=identity", 'N'},
	{ST("{\"Effect\":\"Deny\",\"Action\":\"kms:*\",\"Resource\":\"" KEY "\"}"),
	 "@kind=identity", 'D'},
	{ST("{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"arn:aws:kms:*:444455556666:"
	    "key/*\"}"),
	 "@kind=identity", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "@kind=identity", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Action\":\"kms:*\"}"), "@kind=identity", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"), "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ALICE
	    "\"},\"Action\":\"sts:AssumeRole\"}"),
	 "@kind=trust;@action=sts:AssumeRole;@resource=" ROLE, 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" BOB
	    "\"},\"Action\":\"sts:AssumeRole\"}"),
	 "@kind=trust;@action=sts:AssumeRole;@resource=" ROLE, 'N'},

	/* ---- String operators ---- */
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\"}}",
	 "kms:CallerAccount=111122223333", 'A'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\"}}",
	 "kms:CallerAccount=444455556666", 'N'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":[\"444455556666\",\"111122223333\"]}}",
	 "kms:CallerAccount=111122223333", 'A'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\"}}", "", 'N'},
	{"{\"StringEquals\":{\"KMS:callerAccount\":\"111122223333\"}}",
	 "kms:CallerAccount=111122223333", 'A'},
	{"{\"StringEquals\":{\"kms:ViaService\":\"secretsmanager.us-east-1.amazonaws.com\"}}",
	 "kms:ViaService=secretsmanager.us-east-1.amazonaws.com", 'A'},
	{"{\"StringEquals\":{\"kms:ViaService\":\"secretsmanager.us-east-1.amazonaws.com\"}}", "",
	 'N'},
	{"{\"StringEquals\":{\"kms:ViaService\":\"SecretsManager.us-east-1.amazonaws.com\"}}",
	 "kms:ViaService=secretsmanager.us-east-1.amazonaws.com", 'N'},
	{"{\"StringNotEquals\":{\"kms:CallerAccount\":\"111122223333\"}}",
	 "kms:CallerAccount=444455556666", 'A'},
	{"{\"StringNotEquals\":{\"kms:CallerAccount\":\"111122223333\"}}",
	 "kms:CallerAccount=111122223333", 'N'},
	{"{\"StringNotEquals\":{\"kms:ViaService\":\"ec2.us-east-1.amazonaws.com\"}}", "", 'A'},
	{"{\"StringNotEquals\":{\"kms:CallerAccount\":[\"1\",\"2\"]}}", "kms:CallerAccount=2", 'N'},
	{"{\"StringEqualsIgnoreCase\":{\"kms:KeySpec\":\"symmetric_default\"}}",
	 "kms:KeySpec=SYMMETRIC_DEFAULT", 'A'},
	{"{\"StringEqualsIgnoreCase\":{\"kms:KeySpec\":\"rsa_2048\"}}",
	 "kms:KeySpec=SYMMETRIC_DEFAULT", 'N'},
	{"{\"StringNotEqualsIgnoreCase\":{\"kms:KeyUsage\":\"encrypt_decrypt\"}}",
	 "kms:KeyUsage=ENCRYPT_DECRYPT", 'N'},
	{"{\"StringNotEqualsIgnoreCase\":{\"kms:KeyUsage\":\"sign_verify\"}}",
	 "kms:KeyUsage=ENCRYPT_DECRYPT", 'A'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"alias/app-*\"}}",
	 "kms:RequestAlias=alias/app-prod", 'A'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"alias/app-*\"}}", "kms:RequestAlias=alias/other",
	 'N'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"alias/app-?\"}}", "kms:RequestAlias=alias/app-1",
	 'A'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"alias/app-?\"}}", "kms:RequestAlias=alias/app-12",
	 'N'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"alias/app-*\"}}", "", 'N'},
	{"{\"StringNotLike\":{\"kms:RequestAlias\":\"alias/app-*\"}}",
	 "kms:RequestAlias=alias/other", 'A'},
	{"{\"StringNotLike\":{\"kms:RequestAlias\":\"alias/app-*\"}}",
	 "kms:RequestAlias=alias/app-x", 'N'},
	{"{\"StringLike\":{\"kms:RequestAlias\":\"*\"}}", "kms:RequestAlias=alias/x", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionAlgorithm\":\"SYMMETRIC_DEFAULT\"}}",
	 "kms:EncryptionAlgorithm=SYMMETRIC_DEFAULT", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\"}}",
	 "kms:EncryptionAlgorithm=SYMMETRIC_DEFAULT", 'N'},
	{"{\"StringEquals\":{\"kms:KeyOrigin\":\"AWS_KMS\"}}", "kms:KeyOrigin=AWS_KMS", 'A'},
	{"{\"StringEquals\":{\"kms:KeyOrigin\":\"EXTERNAL\"}}", "kms:KeyOrigin=AWS_KMS", 'N'},
	{"{\"StringEquals\":{\"aws:PrincipalAccount\":\"111122223333\"}}",
	 "aws:PrincipalAccount=111122223333", 'A'},
	{"{\"StringEqualsIfExists\":{\"kms:ViaService\":\"ec2.us-east-1.amazonaws.com\"}}", "",
	 'A'},
	{"{\"StringEqualsIfExists\":{\"kms:ViaService\":\"ec2.us-east-1.amazonaws.com\"}}",
	 "kms:ViaService=s3.us-east-1.amazonaws.com", 'N'},
	{"{\"StringEqualsIfExists\":{\"kms:ViaService\":\"ec2.us-east-1.amazonaws.com\"}}",
	 "kms:ViaService=ec2.us-east-1.amazonaws.com", 'A'},
	{"{\"StringLikeIfExists\":{\"kms:RequestAlias\":\"alias/a*\"}}", "", 'A'},
	{"{\"StringNotEqualsIfExists\":{\"kms:CallerAccount\":\"1\"}}", "", 'A'},

	/* ---- encryption context ---- */
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "ec.app=billing", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "ec.app=payroll", 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "ec.other=billing", 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "", 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "ec.App=billing", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:app\":\"billing\"}}", "ec.app=Billing", 'N'},
	{"{\"StringLike\":{\"kms:EncryptionContext:tenant\":\"t-*\"}}", "ec.tenant=t-42;ec.app=x",
	 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:a\":\"1\",\"kms:EncryptionContext:b\":\"2\"}}",
	 "ec.a=1;ec.b=2", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:a\":\"1\",\"kms:EncryptionContext:b\":\"2\"}}",
	 "ec.a=1;ec.b=3", 'N'},
	{"{\"Null\":{\"kms:EncryptionContext:app\":\"false\"}}", "ec.app=x", 'A'},
	{"{\"Null\":{\"kms:EncryptionContext:app\":\"false\"}}", "", 'N'},
	{"{\"Null\":{\"kms:EncryptionContext:app\":\"true\"}}", "", 'A'},
	{"{\"Null\":{\"kms:EncryptionContext:app\":\"true\"}}", "ec.app=x", 'N'},
	{"{\"Null\":{\"kms:EncryptionContextKeys\":\"true\"}}", "", 'A'},
	{"{\"Null\":{\"kms:EncryptionContextKeys\":\"true\"}}", "ec.a=1", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"},{"
	    "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*\","
	    "\"Condition\":{\"Null\":{\"kms:EncryptionContext:app\":\"true\"}}}"),
	 "", 'D'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"},{"
	    "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*\","
	    "\"Condition\":{\"Null\":{\"kms:EncryptionContext:app\":\"true\"}}}"),
	 "ec.app=x", 'A'},
	{"{\"ForAnyValue:StringEquals\":{\"kms:EncryptionContextKeys\":\"app\"}}",
	 "ec.app=1;ec.z=2", 'A'},
	{"{\"ForAnyValue:StringEquals\":{\"kms:EncryptionContextKeys\":\"app\"}}", "ec.y=1;ec.z=2",
	 'N'},
	{"{\"ForAnyValue:StringEquals\":{\"kms:EncryptionContextKeys\":\"app\"}}", "", 'N'},
	{"{\"ForAllValues:StringEquals\":{\"kms:EncryptionContextKeys\":[\"app\",\"env\"]}}",
	 "ec.app=1;ec.env=2", 'A'},
	{"{\"ForAllValues:StringEquals\":{\"kms:EncryptionContextKeys\":[\"app\",\"env\"]}}",
	 "ec.app=1;ec.x=2", 'N'},
	{"{\"ForAllValues:StringEquals\":{\"kms:EncryptionContextKeys\":[\"app\",\"env\"]}}", "",
	 'A'},
	{"{\"ForAllValues:StringLike\":{\"kms:EncryptionContextKeys\":\"app*\"}}",
	 "ec.app1=1;ec.app2=2", 'A'},
	{"{\"ForAllValues:StringNotEquals\":{\"kms:EncryptionContextKeys\":\"secret\"}}",
	 "ec.a=1;ec.b=2", 'A'},
	{"{\"ForAllValues:StringNotEquals\":{\"kms:EncryptionContextKeys\":\"secret\"}}",
	 "ec.a=1;ec.secret=2", 'N'},
	{"{\"ForAnyValue:StringNotEquals\":{\"kms:EncryptionContextKeys\":\"a\"}}", "ec.a=1;ec.b=2",
	 'A'},
	{"{\"ForAnyValue:StringNotEquals\":{\"kms:EncryptionContextKeys\":\"a\"}}", "ec.a=1", 'N'},

	/* ---- grant conditions (multi-valued) ---- */
	{"{\"ForAllValues:StringEquals\":{\"kms:GrantOperations\":[\"Decrypt\",\"Encrypt\"]}}",
	 "@action=kms:CreateGrant;kms:GrantOperations=Decrypt", 'A'},
	{"{\"ForAllValues:StringEquals\":{\"kms:GrantOperations\":[\"Decrypt\",\"Encrypt\"]}}",
	 "@action=kms:CreateGrant;kms:GrantOperations=Decrypt|RetireGrant", 'N'},
	{"{\"ForAnyValue:StringEquals\":{\"kms:GrantOperations\":\"Decrypt\"}}",
	 "@action=kms:CreateGrant;kms:GrantOperations=Encrypt|Decrypt", 'A'},
	{"{\"ForAllValues:StringEquals\":{\"kms:GrantOperations\":\"Decrypt\"}}",
	 "@action=kms:CreateGrant;kms:GrantOperations=[]", 'A'},
	{"{\"ForAnyValue:StringEquals\":{\"kms:GrantOperations\":\"Decrypt\"}}",
	 "@action=kms:CreateGrant;kms:GrantOperations=[]", 'N'},
	{"{\"Bool\":{\"kms:GrantIsForAWSResource\":\"true\"}}", "kms:GrantIsForAWSResource=true",
	 'A'},
	{"{\"Bool\":{\"kms:GrantIsForAWSResource\":true}}", "kms:GrantIsForAWSResource=true", 'A'},
	{"{\"Bool\":{\"kms:GrantIsForAWSResource\":\"true\"}}", "kms:GrantIsForAWSResource=false",
	 'N'},
	{"{\"Bool\":{\"kms:GrantIsForAWSResource\":\"true\"}}", "", 'N'},
	{"{\"ForAnyValue:StringLike\":{\"kms:ResourceAliases\":\"alias/prod-*\"}}",
	 "kms:ResourceAliases=alias/dev-1|alias/prod-1", 'A'},
	{"{\"ForAnyValue:StringLike\":{\"kms:ResourceAliases\":\"alias/prod-*\"}}",
	 "kms:ResourceAliases=alias/dev-1", 'N'},
	{"{\"ForAllValues:StringLike\":{\"kms:ResourceAliases\":\"alias/prod-*\"}}",
	 "kms:ResourceAliases=alias/prod-1|alias/dev-1", 'N'},
	{"{\"ForAnyValue:StringLike\":{\"kms:ResourceAliases\":\"alias/*\"}}",
	 "kms:ResourceAliases=[]", 'N'},

	/* ---- Bool, aws:SecureTransport ---- */
	{"{\"Bool\":{\"aws:SecureTransport\":\"true\"}}", "aws:SecureTransport=true", 'A'},
	{"{\"Bool\":{\"aws:SecureTransport\":\"true\"}}", "aws:SecureTransport=false", 'N'},
	{"{\"Bool\":{\"aws:SecureTransport\":\"false\"}}", "aws:SecureTransport=false", 'A'},
	{"{\"Bool\":{\"aws:SecureTransport\":\"TRUE\"}}", "aws:SecureTransport=true", 'A'},
	{"{\"Bool\":{\"aws:SecureTransport\":\"yes\"}}", "aws:SecureTransport=true", 'N'},
	{"{\"BoolIfExists\":{\"aws:SecureTransport\":\"true\"}}", "", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"},{"
	    "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\","
	    "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}"),
	 "aws:SecureTransport=false", 'D'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"},{"
	    "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\","
	    "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}"),
	 "aws:SecureTransport=true", 'A'},

	/* ---- Numeric ---- */
	{"{\"NumericEquals\":{\"kms:n\":\"10\"}}", "kms:n=10", 'A'},
	{"{\"NumericEquals\":{\"kms:n\":10}}", "kms:n=10.0", 'A'},
	{"{\"NumericEquals\":{\"kms:n\":\"10\"}}", "kms:n=11", 'N'},
	{"{\"NumericNotEquals\":{\"kms:n\":\"10\"}}", "kms:n=11", 'A'},
	{"{\"NumericNotEquals\":{\"kms:n\":\"10\"}}", "kms:n=10", 'N'},
	{"{\"NumericLessThan\":{\"kms:n\":\"10\"}}", "kms:n=9", 'A'},
	{"{\"NumericLessThan\":{\"kms:n\":\"10\"}}", "kms:n=10", 'N'},
	{"{\"NumericLessThanEquals\":{\"kms:n\":\"10\"}}", "kms:n=10", 'A'},
	{"{\"NumericLessThanEquals\":{\"kms:n\":\"10\"}}", "kms:n=10.5", 'N'},
	{"{\"NumericGreaterThan\":{\"kms:n\":\"10\"}}", "kms:n=10.5", 'A'},
	{"{\"NumericGreaterThan\":{\"kms:n\":\"10\"}}", "kms:n=-3", 'N'},
	{"{\"NumericGreaterThanEquals\":{\"kms:n\":\"10\"}}", "kms:n=10", 'A'},
	{"{\"NumericGreaterThanEquals\":{\"kms:n\":\"10\"}}", "kms:n=abc", 'N'},
	{"{\"NumericLessThan\":{\"kms:n\":\"ten\"}}", "kms:n=1", 'N'},
	{"{\"NumericLessThanIfExists\":{\"kms:n\":\"10\"}}", "", 'A'},
	{"{\"NumericLessThan\":{\"kms:n\":\"10\"}}", "", 'N'},

	/* ---- Date, aws:CurrentTime ---- */
	{"{\"DateLessThan\":{\"aws:CurrentTime\":\"2030-01-01T00:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateLessThan\":{\"aws:CurrentTime\":\"2020-01-01T00:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'N'},
	{"{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2020-01-01\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2026-01-01\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'N'},
	{"{\"DateEquals\":{\"aws:CurrentTime\":\"2025-06-01T12:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateEquals\":{\"aws:CurrentTime\":\"2025-06-01T14:00:00+02:00\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateEquals\":{\"aws:CurrentTime\":\"1748779200\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateNotEquals\":{\"aws:CurrentTime\":\"2025-06-01T12:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:01Z", 'A'},
	{"{\"DateNotEquals\":{\"aws:CurrentTime\":\"2025-06-01T12:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00.000Z", 'N'},
	{"{\"DateLessThanEquals\":{\"aws:CurrentTime\":\"2025-06-01T12:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},
	{"{\"DateGreaterThanEquals\":{\"aws:CurrentTime\":\"2025-06-01T12:00:01Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'N'},
	{"{\"DateLessThan\":{\"aws:CurrentTime\":\"not a date\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'N'},
	{"{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2020-01-01T00:00:00Z\"},\"DateLessThan\":{"
	 "\"aws:CurrentTime\":\"2030-01-01T00:00:00Z\"}}",
	 "aws:CurrentTime=2025-06-01T12:00:00Z", 'A'},

	/* ---- Arn operators, aws:PrincipalArn ---- */
	{"{\"ArnEquals\":{\"aws:PrincipalArn\":\"" ALICE "\"}}", "aws:PrincipalArn=" ALICE, 'A'},
	{"{\"ArnEquals\":{\"aws:PrincipalArn\":\"" ALICE "\"}}", "aws:PrincipalArn=" BOB, 'N'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:user/*\"}}",
	 "aws:PrincipalArn=" BOB, 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:role/*\"}}",
	 "aws:PrincipalArn=" BOB, 'N'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*:role/app\"}}",
	 "aws:PrincipalArn=" ROLE, 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:*\"}}",
	 "aws:PrincipalArn=" ROLE, 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*\"}}", "aws:PrincipalArn=" ROLE, 'N'},
	{"{\"ArnNotEquals\":{\"aws:PrincipalArn\":\"" ALICE "\"}}", "aws:PrincipalArn=" BOB, 'A'},
	{"{\"ArnNotLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:user/*\"}}",
	 "aws:PrincipalArn=" BOB, 'N'},
	{"{\"ArnNotLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:user/*\"}}",
	 "aws:PrincipalArn=" ROLE, 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:user/*\"}}",
	 "aws:PrincipalArn=not-an-arn", 'N'},
	{"{\"ArnLikeIfExists\":{\"aws:PrincipalArn\":\"arn:aws:iam::111122223333:user/*\"}}", "",
	 'A'},
	{"{\"StringEquals\":{\"aws:PrincipalArn\":\"" ROLE "\"}}", "aws:PrincipalArn=" ROLE, 'A'},

	/* ---- IpAddress, aws:SourceIp ---- */
	{"{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}", "aws:SourceIp=10.1.2.3", 'A'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}", "aws:SourceIp=11.1.2.3", 'N'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"192.168.1.7\"}}", "aws:SourceIp=192.168.1.7", 'A'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"192.168.1.0/25\"}}", "aws:SourceIp=192.168.1.200",
	 'N'},
	{"{\"IpAddress\":{\"aws:SourceIp\":[\"203.0.113.0/24\",\"127.0.0.0/8\"]}}",
	 "aws:SourceIp=127.0.0.1", 'A'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"0.0.0.0/0\"}}", "aws:SourceIp=8.8.8.8", 'A'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"2001:db8::/32\"}}", "aws:SourceIp=2001:db8:1::5", 'A'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"2001:db8::/32\"}}", "aws:SourceIp=2001:db9::5", 'N'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"2001:db8::/32\"}}", "aws:SourceIp=10.0.0.1", 'N'},
	{"{\"NotIpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}", "aws:SourceIp=11.1.2.3", 'A'},
	{"{\"NotIpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}", "aws:SourceIp=10.1.2.3", 'N'},
	{"{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/33\"}}", "aws:SourceIp=10.1.2.3", 'N'},

	/* ---- tags ---- */
	{"{\"StringEquals\":{\"aws:ResourceTag/env\":\"prod\"}}", "rt.env=prod", 'A'},
	{"{\"StringEquals\":{\"aws:ResourceTag/env\":\"prod\"}}", "rt.env=dev", 'N'},
	{"{\"StringEquals\":{\"aws:ResourceTag/env\":\"prod\"}}", "rt.team=x", 'N'},
	{"{\"StringEquals\":{\"aws:ResourceTag/Env\":\"prod\"}}", "rt.env=prod", 'A'},
	{"{\"Null\":{\"aws:ResourceTag/env\":\"true\"}}", "rt.team=x", 'A'},
	{"{\"StringEquals\":{\"aws:RequestTag/owner\":\"alice\"}}", "qt.owner=alice", 'A'},
	{"{\"StringEquals\":{\"aws:RequestTag/owner\":\"alice\"}}", "qt.owner=bob", 'N'},
	{"{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"owner\",\"env\"]}}",
	 "qt.owner=a;qt.env=b", 'A'},
	{"{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"owner\",\"env\"]}}",
	 "qt.owner=a;qt.cost=b", 'N'},
	{"{\"ForAnyValue:StringEquals\":{\"aws:TagKeys\":\"cost\"}}", "qt.owner=a;qt.cost=b", 'A'},
	{"{\"StringLike\":{\"aws:ResourceTag/env\":\"pr*\"}}", "rt.env=prod;rt.x=y", 'A'},

	/* ---- several conditions are ANDed, several values ORed ---- */
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\",\"kms:ViaService\":\"s3.us-"
	 "east-1.amazonaws.com\"}}",
	 "kms:CallerAccount=111122223333;kms:ViaService=s3.us-east-1.amazonaws.com", 'A'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\",\"kms:ViaService\":\"s3.us-"
	 "east-1.amazonaws.com\"}}",
	 "kms:CallerAccount=111122223333", 'N'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":\"111122223333\"},\"Bool\":{\"aws:"
	 "SecureTransport\":\"true\"}}",
	 "kms:CallerAccount=111122223333;aws:SecureTransport=false", 'N'},
	{"{\"StringEquals\":{\"kms:ViaService\":[\"ec2.us-east-1.amazonaws.com\",\"rds.us-east-1."
	 "amazonaws.com\"]}}",
	 "kms:ViaService=rds.us-east-1.amazonaws.com", 'A'},

	/* ---- malformed documents ---- */
	{"not json", "", 'M'},
	{"[]", "", 'M'},
	{"{\"Version\":\"2012-10-17\"}", "", 'M'},
	{"{\"Version\":\"2012-10-17\",\"Statement\":[]}", "", 'M'},
	{"{\"Version\":\"2011-01-01\",\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\","
	 "\"Action\":\"kms:*\",\"Resource\":\"*\"}}",
	 "", 'M'},
	{"{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\","
	 "\"Resource\":\"*\"}}",
	 "", 'A'},
	{"{\"Version\":\"2012-10-17\",\"Bogus\":1,\"Statement\":{\"Effect\":\"Allow\","
	 "\"Principal\":\"*\",\"Action\":\"kms:*\"}}",
	 "", 'M'},
	{ST("{\"Effect\":\"Permit\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"), "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Resource\":\"*\"}"), "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"NotAction\":\"kms:"
	    "Decrypt\",\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":[],\"Resource\":\"*\"}"), "",
	 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"Encrypt\",\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"key/"
	    "abc\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::12345:root\"},\"Action\":"
	    "\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"alice\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:group/"
	    "x\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":{\"Bogus\":\"x\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"everyone\",\"Action\":\"kms:*\",\"Resource\":\"*"
	    "\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"NotPrincipal\":\"*\",\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}"),
	 "", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\","
	    "\"Extra\":1}"),
	 "", 'M'},
	{"{\"StringEqualz\":{\"kms:CallerAccount\":\"1\"}}", "", 'M'},
	{"{\"ForSomeValues:StringEquals\":{\"kms:CallerAccount\":\"1\"}}", "", 'M'},
	{"{\"NullIfExists\":{\"kms:CallerAccount\":\"true\"}}", "", 'M'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":[]}}", "", 'M'},
	{"{\"StringEquals\":{\"kms:CallerAccount\":{\"a\":1}}}", "", 'M'},
	{"{\"StringEquals\":\"x\"}", "", 'M'},
	{"{\"StringEquals\":{}}", "", 'M'},
	{"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\","
	 "\"Action\":\"kms:*\",\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Principal\":\"*\","
	 "\"Action\":\"kms:*\",\"Resource\":\"*\"}],\"Version\":\"2012-10-17\"}",
	 "", 'M'},
	/* ---- policy variables (Version 2012-10-17 only) ---- */
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "db-AbCdEf;aws:username=alice",
	 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "db-AbCdEf;aws:username=bob",
	 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-AbCdEf", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"${aws:"
	    "username}\"}"),
	 "@resource=alice;aws:username=alice", 'M'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${AWS:UserName}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "x;aws:username=alice",
	 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username, 'shared'}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:shared/x", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username, 'shared'}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:shared/"
	 "x;aws:username=alice",
	 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${ aws:username ,  'it''s' }/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:it's/x", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username, 'a}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:a/x", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username/"
	 "x;aws:username=alice",
	 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${*}\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:x", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${*}\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:*", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:a${?}c\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:abc", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:a${?}c\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:a?c", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:a${$}c\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:a$c", 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:PrincipalTag/team}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:x*y/z;aws:PrincipalTag/"
	 "team=x*y",
	 'A'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:PrincipalTag/team}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:xQy/z;aws:PrincipalTag/"
	 "team=x*y",
	 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${kms:EncryptionContextKeys}\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:a;ec.a=1", 'N'},
	{ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${kms:EncryptionContext:a}\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:one;ec.a=one", 'A'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:bob/x;aws:username=alice",
	 'D'},
	{ST("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":\"arn:aws:"
	    "secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}"),
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "x;aws:username=alice",
	 'N'},
	{"{\"Version\":\"2008-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\","
	 "\"Action\":\"*\",\"Resource\":\"arn:aws:secretsmanager:us-east-1:111122223333:secret:${"
	 "aws:username}/*\"}]}",
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "x;aws:username=alice",
	 'N'},
	{"{\"Version\":\"2008-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\","
	 "\"Action\":\"*\",\"Resource\":\"arn:aws:secretsmanager:us-east-1:111122223333:secret:${"
	 "aws:username}/*\"}]}",
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/"
	 "x;aws:username=alice",
	 'A'},
	{"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
	 "\"arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/*\"}]}",
	 "@resource=arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/"
	 "x;aws:username=alice",
	 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:tenant\":\"${aws:PrincipalTag/tenant}\"}}",
	 "ec.tenant=blue;aws:PrincipalTag/tenant=blue", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:tenant\":\"${aws:PrincipalTag/tenant}\"}}",
	 "ec.tenant=blue;aws:PrincipalTag/tenant=red", 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:tenant\":\"${aws:PrincipalTag/tenant}\"}}",
	 "ec.tenant=blue", 'N'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:tenant\":[\"${aws:PrincipalTag/"
	 "tenant}\",\"blue\"]}}",
	 "ec.tenant=blue", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:tenant\":\"${aws:PrincipalTag/tenant, "
	 "'blue'}\"}}",
	 "ec.tenant=blue", 'A'},
	{"{\"StringEquals\":{\"kms:EncryptionContext:a\":\"x${$}y${*}\"}}", "ec.a=x$y*", 'A'},
	{"{\"StringLike\":{\"kms:EncryptionContext:p\":\"${aws:PrincipalTag/p}\"}}",
	 "ec.p=abc;aws:PrincipalTag/p=a*", 'N'},
	{"{\"StringLike\":{\"kms:EncryptionContext:p\":\"${aws:PrincipalTag/p}\"}}",
	 "ec.p=a*;aws:PrincipalTag/p=a*", 'A'},
	{"{\"StringLike\":{\"kms:EncryptionContext:p\":\"${aws:PrincipalTag/p}*\"}}",
	 "ec.p=abc;aws:PrincipalTag/p=a", 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::${aws:PrincipalAccount}:user/*\"}}",
	 "aws:PrincipalArn=arn:aws:iam::111122223333:user/alice;aws:PrincipalAccount=111122223333",
	 'A'},
	{"{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::${aws:PrincipalAccount}:user/*\"}}",
	 "aws:PrincipalArn=arn:aws:iam::111122223333:user/alice;aws:PrincipalAccount=444455556666",
	 'N'},
	{"{\"DateGreaterThanEquals\":{\"aws:CurrentTime\":\"${aws:CurrentTime}\"}}",
	 "aws:CurrentTime=2026-12-07T08:00:00Z", 'A'},
	{"{\"NumericEquals\":{\"aws:EpochTime\":\"${aws:EpochTime}\"}}", "aws:EpochTime=1796630400",
	 'A'},
	{"{\"StringEquals\":{\"aws:username\":\"${aws:userid}\"}}",
	 "aws:username=alice;aws:userid=AIDAX", 'N'},
	{"{\"StringEquals\":{\"aws:PrincipalType\":\"${aws:PrincipalTag/kind}\"}}",
	 "aws:PrincipalType=User;aws:PrincipalTag/kind=User", 'A'},
	{"@large", "", 'L'},
};

/* ---- request-context construction ---- */

struct ctxbuf {
	struct policy_req req;
	json_t *ec, *rtags, *qtags;
	json_t *lists[8];
	size_t n_lists;
	char strs[32][256];
	size_t n_strs;
	enum policy_kind kind;
};

static char *keep(struct ctxbuf *b, const char *s, size_t n)
{
	if (b->n_strs >= 32 || n >= 256)
		return NULL;
	char *d = b->strs[b->n_strs++];
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

static void add_tag(json_t *list, const char *k, const char *v)
{
	json_array_append_new(list, json_pack("{s:s, s:s}", "TagKey", k, "TagValue", v));
}

static void build_ctx(struct ctxbuf *b, const char *spec)
{
	memset(b, 0, sizeof *b);
	b->kind = POLICY_RESOURCE;
	b->req.principal_arn = ALICE;
	b->req.principal_account = "111122223333";
	b->req.action = "kms:Encrypt";
	b->req.resource = KEY;
	b->ec = json_object();
	b->rtags = json_array();
	b->qtags = json_array();
	const char *p = spec;
	while (*p) {
		const char *end = strchr(p, ';');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *item = keep(b, p, n);
		p += n + (end ? 1 : 0);
		if (item == NULL)
			continue;
		char *eq = strchr(item, '=');
		if (eq == NULL)
			continue;
		*eq = 0;
		char *val = eq + 1;
		if (strcmp(item, "@action") == 0)
			b->req.action = val;
		else if (strcmp(item, "@principal") == 0)
			b->req.principal_arn = val;
		else if (strcmp(item, "@account") == 0)
			b->req.principal_account = val;
		else if (strcmp(item, "@role") == 0)
			b->req.role_arn = val;
		else if (strcmp(item, "@resource") == 0)
			b->req.resource = val;
		else if (strcmp(item, "@service") == 0)
			b->req.service = val;
		else if (strcmp(item, "@kind") == 0)
			b->kind = strcmp(val, "identity") == 0 ? POLICY_IDENTITY : POLICY_TRUST;
		else if (strncmp(item, "ec.", 3) == 0)
			json_object_set_new(b->ec, item + 3, json_string(val));
		else if (strncmp(item, "rt.", 3) == 0)
			add_tag(b->rtags, item + 3, val);
		else if (strncmp(item, "qt.", 3) == 0)
			add_tag(b->qtags, item + 3, val);
		else if (strcmp(val, "[]") == 0 || strchr(val, '|') != NULL) {
			json_t *l = json_array();
			char *v = val;
			while (strcmp(val, "[]") != 0 && v != NULL) {
				char *bar = strchr(v, '|');
				if (bar)
					*bar = 0;
				json_array_append_new(l, json_string(v));
				v = bar ? bar + 1 : NULL;
			}
			b->lists[b->n_lists++] = l;
			policy_req_add(&b->req, (struct policy_value){.key = item,
								      .kind = PV_JSON_LIST,
								      .json = l});
		} else {
			policy_req_add_str(&b->req, item, val);
		}
	}
	policy_req_add(&b->req,
		       (struct policy_value){
			       .key = "kms:EncryptionContext:", .kind = PV_MAP, .json = b->ec});
	policy_req_add(&b->req, (struct policy_value){.key = "kms:EncryptionContextKeys",
						      .kind = PV_MAP_KEYS,
						      .json = b->ec});
	policy_req_add(&b->req, (struct policy_value){.key = "aws:ResourceTag/",
						      .kind = PV_TAGS,
						      .json = b->rtags});
	policy_req_add(
		&b->req,
		(struct policy_value){.key = "aws:RequestTag/", .kind = PV_TAGS, .json = b->qtags});
	policy_req_add(
		&b->req,
		(struct policy_value){.key = "aws:TagKeys", .kind = PV_TAG_KEYS, .json = b->qtags});
}

static void free_ctx(struct ctxbuf *b)
{
	json_decref(b->ec);
	json_decref(b->rtags);
	json_decref(b->qtags);
	for (size_t i = 0; i < b->n_lists; i++)
		json_decref(b->lists[i]);
}

static char run_case(const struct tcase *t, struct kbuf *msg)
{
	struct ctxbuf b;
	build_ctx(&b, t->ctx);
	struct kbuf doc;
	kbuf_init(&doc, 1u << 20);
	if (strcmp(t->policy, "@large") == 0) {
		if (k_failed(kbuf_append_str(&doc, ST("{\"Sid\":\""))))
			return '?';
		while (doc.len < POLICY_MAX_BYTES)
			if (k_failed(kbuf_append_str(&doc, "xxxxxxxxxxxxxxxx")))
				return '?';
		if (k_failed(kbuf_append_str(
			    &doc,
			    "\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\"}]}")))
			return '?';
	} else if (t->policy[0] == '{' && strncmp(t->policy, "{\"Version\"", 10) != 0 &&
		   strncmp(t->policy, "{\"Statement\"", 12) != 0) {
		kbuf_note(&doc,
			  "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
			  "\"Principal\":\"*\","
			  "\"Action\":\"kms:*\",\"Resource\":\"*\",\"Condition\":%s}}",
			  t->policy);
	} else {
		kbuf_note(&doc, "%s", t->policy);
	}
	struct policy *p = NULL;
	k_status rc = policy_parse(kbuf_slice(&doc), b.kind, &p, msg);
	kbuf_release(&doc);
	char got;
	if (k_is(rc, K_E_MALFORMED_POLICY)) {
		got = 'M';
	} else if (k_is(rc, K_E_LIMIT_EXCEEDED)) {
		got = 'L';
	} else if (k_failed(rc)) {
		got = '?';
	} else {
		struct policy_result r;
		policy_evaluate(p, &b.req, &r);
		got = r.explicit_deny ? 'D' : r.allow_direct ? 'A' : r.allow_account ? 'a' : 'N';
		policy_free(p);
	}
	free_ctx(&b);
	return got;
}

static void test_table(void)
{
	size_t n = sizeof cases / sizeof cases[0];
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	for (size_t i = 0; i < n; i++) {
		kbuf_reset(&msg);
		char got = run_case(&cases[i], &msg);
		if (got == cases[i].expect) {
			tl_passed++;
		} else {
			tl_failed++;
			fprintf(stderr,
				"FAIL case %zu: expected %c, got %c (%s)\n  policy: %.300s\n  ctx: "
				"%s\n",
				i, cases[i].expect, got, kbuf_cstr(&msg), cases[i].policy,
				cases[i].ctx);
		}
	}
	kbuf_release(&msg);
	fprintf(stderr, "%zu evaluation cases\n", n);
	CHECK(n >= 150);
}

static void test_helpers(void)
{
	CHECK(policy_wildcard_match("kms:*", "kms:Encrypt", false));
	CHECK(policy_wildcard_match("*", "", false));
	CHECK(policy_wildcard_match("a*b*c", "aXXbYYc", false));
	CHECK(!policy_wildcard_match("a*b*c", "aXXbYY", false));
	CHECK(policy_wildcard_match("KMS:ENCRYPT", "kms:Encrypt", true));
	CHECK(!policy_wildcard_match("KMS:ENCRYPT", "kms:Encrypt", false));
	CHECK(policy_valid_principal("111122223333"));
	CHECK(policy_valid_principal(ROLE));
	CHECK(policy_valid_principal(SESSION));
	CHECK(!policy_valid_principal("arn:aws:sts::111122223333:assumed-role/app"));
	CHECK(!policy_valid_principal("arn:aws:iam::111122223333:user/"));
	CHECK(!policy_valid_principal("arn:aws:iam::11112222333:root"));
	struct kbuf msg;
	kbuf_init(&msg, 512);
	struct policy *p = NULL;
	CHECK(k_is(
		policy_parse(
			KSLICE_LIT("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\","
				   "\"Action\":\"kms:*\",\"Condition\":{\"Foo\":{\"a\":\"b\"}}}}"),
			POLICY_RESOURCE, &p, &msg),
		K_E_MALFORMED_POLICY));
	CHECK(strstr(kbuf_cstr(&msg), "Foo") != NULL);
	CHECK(p == NULL);
	kbuf_release(&msg);
}

/*
 * Two sources of one prefix (a user's configured tags and, for a session,
 * its session tags) are read in the order they were added: a tag the
 * first lacks comes from the second, as a condition and as a variable.
 */
static void test_tag_sources(void)
{
	json_t *first = json_pack("{s:s}", "team", "blue");
	json_t *second = json_pack("{s:s, s:s}", "team", "red", "tenant", "t1");
	struct policy_req r;
	memset(&r, 0, sizeof r);
	r.principal_arn = ALICE;
	r.principal_account = "111122223333";
	r.action = "kms:Encrypt";
	r.resource = "arn:aws:secretsmanager:us-east-1:111122223333:secret:t1/blue";
	CHECK(policy_req_add(
		&r,
		(struct policy_value){.key = "aws:PrincipalTag/", .kind = PV_MAP, .json = first}));
	CHECK(policy_req_add(
		&r,
		(struct policy_value){.key = "aws:PrincipalTag/", .kind = PV_MAP, .json = second}));
	struct kbuf msg;
	kbuf_init(&msg, 512);
	struct policy *p = NULL;
	CHECK(k_ok(policy_parse(
		KSLICE_LIT("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
			   "\"Action\":\"kms:*\",\"Resource\":\"arn:aws:secretsmanager:*:*:secret:"
			   "${aws:PrincipalTag/tenant}/${aws:PrincipalTag/team}\",\"Condition\":{"
			   "\"StringEquals\":{\"aws:PrincipalTag/tenant\":\"t1\"}}}}"),
		POLICY_IDENTITY, &p, &msg)));
	CHECK(policy_allows(p, &r));
	r.resource = "arn:aws:secretsmanager:us-east-1:111122223333:secret:t1/red";
	CHECK(!policy_allows(p, &r));
	policy_free(p);
	kbuf_release(&msg);
	json_decref(first);
	json_decref(second);
}

int main(void)
{
	RUN(test_table);
	RUN(test_helpers);
	RUN(test_tag_sources);
	return tl_summary();
}
